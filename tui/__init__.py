"""The pywats terminal UI (Textual)."""
