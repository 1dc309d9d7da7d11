"""Shipped pipeline recipes (YAML), run with `redpajama run NAME_OR_FILE -o OUT`."""
