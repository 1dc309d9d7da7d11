"""Causal flash attention (GQA/MQA, Dqk != Dv, packed varlen sequences): Triton kernels, custom ops."""

from redpajama.kernels.attention.flash import flash_attention
from redpajama.kernels.attention.naive import attention_naive

__all__ = ["attention_naive", "flash_attention"]
