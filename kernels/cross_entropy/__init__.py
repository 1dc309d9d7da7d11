"""Cross-entropy loss and in-place logits gradient of one chunk of rows (Triton)."""

from redpajama.kernels.cross_entropy.cross_entropy import cross_entropy_chunk

__all__ = ["cross_entropy_chunk"]
