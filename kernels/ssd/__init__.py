"""Mamba-2 SSD (state space duality): naive references, a PyTorch chunked path, Triton forward and
backward."""

from redpajama.kernels.ssd.ssd import ssd

__all__ = ["ssd"]
