"""Optional compiled helpers. Every function here has a pure-Python equivalent that stays the
test oracle and the fallback when the extension was not built (see `setup.py`)."""
