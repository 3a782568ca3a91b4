"""Tests of the converter plugin system and the built-in converters."""
