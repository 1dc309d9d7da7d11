"""Pipeline stages: pure functions over Arrow record batches plus their typed configs."""
