"""Publish an output tree as a Hugging Face dataset repo: Parquet shards, a dataset card, an upload."""
