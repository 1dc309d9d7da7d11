"""Model and list bundles that the ccnet stage and the ML signals load (see bundle.py)."""
