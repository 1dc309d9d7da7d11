"""Builders of an artifact bundle (see `redpajama.artifacts.bundle` for its layout)."""
