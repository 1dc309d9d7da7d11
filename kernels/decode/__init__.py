"""Decode attention over a paged KV cache (GTA tied state, GLA latent state): Triton and Gluon kernels,
reference."""

from redpajama.kernels.decode.naive import gla_decode_naive, gta_decode_naive
from redpajama.kernels.decode.paged import gla_decode, gta_decode

__all__ = ["gla_decode", "gla_decode_naive", "gta_decode", "gta_decode_naive"]
