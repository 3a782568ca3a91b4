"""The fault matrix of docs/reliability.md: one test module per fault, real processes."""
