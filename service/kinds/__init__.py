"""Job kinds: each one file, declared once."""
