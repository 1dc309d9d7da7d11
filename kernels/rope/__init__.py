"""Rotary position embedding applied to a fused QKV projection (Triton, custom op)."""

from redpajama.kernels.rope.rope_qkv import rope_qkv

__all__ = ["rope_qkv"]
