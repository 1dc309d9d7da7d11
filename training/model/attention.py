"""Attention layers: GQA (grouped-query) and GTA (grouped-tied), both causal, with RoPE.

GTA (Zadouri, Dao et al. 2025, "Hardware-Efficient Attention for Fast Decoding") ties key and value:
each of the G groups has one state `kv` of head_dim D that serves whole as the value and, in its first
half, as the un-rotated half of the key. The key's other half is a single RoPE key of D/2 shared by
every head. Queries split the same way (first half plain, second half rotated), so q.k = q_nope.kv_nope
+ rope(q_rope).rope(k_rope). A decoder caches G*D + D/2 numbers per token instead of GQA's 2*G*D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from redpajama.kernels.attention import flash_attention
from redpajama.kernels.rope import rope_qkv
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.layers import apply_rope


def _sdpa_backends(name: str):
    from torch.nn.attention import SDPBackend

    return {
        "cudnn": [SDPBackend.CUDNN_ATTENTION],
        "flash": [SDPBackend.FLASH_ATTENTION],
        "math": [SDPBackend.MATH],
    }[name]


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "auto"
) -> torch.Tensor:
    """Causal softmax attention. q (B, T, H, Dqk), k (B, T, G, Dqk), v (B, T, G, Dv), H % G == 0.

    Returns (B, T, H, Dv). `auto` prefers cuDNN's fused attention on CUDA (about 1.6x FlashAttention-2
    on an H200, REFERENCE C.1) and lets PyTorch choose elsewhere. `triton` is this project's flash
    kernel (`redpajama.kernels.attention`), which takes grouped K/V and the (B, T, H, D) layout as
    they are: no repeat of K/V and no transposes.
    """
    if backend == "triton":
        return flash_attention(q, k, v)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    groups = q.shape[1] // k.shape[1]
    if backend == "auto":
        backend = "cudnn" if q.is_cuda and q.dtype in (torch.bfloat16, torch.float16) else "sdpa"
    if groups > 1:
        # Not every fused backend takes grouped K/V; the repeat is a view-sized copy per layer.
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    if backend == "sdpa":
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel(_sdpa_backends(backend)):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return out.transpose(1, 2)


def naive_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The definition, in float64-friendly plain ops: the test oracle for every attention path."""
    groups = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)
    v = v.repeat_interleave(groups, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / q.shape[-1] ** 0.5
    t = q.shape[1]
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return torch.einsum("bhts,bshd->bthd", weights, v)


class GroupedQueryAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = config.n_heads, config.kv_heads, config.head_dim
        self.backend = config.attention_backend
        self.kernels = config.kernels
        # One fused projection for q, k and v: one GEMM instead of three narrower ones.
        self.w_qkv = nn.Linear(config.d_model, (self.n_heads + 2 * self.n_kv) * self.head_dim, bias=False)
        self.w_out = nn.Linear(self.n_heads * self.head_dim, config.d_model, bias=False)

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """q (B, T, H, D), k and v (B, T, G, D), rotated: what the attention kernel consumes."""
        b, t, _ = x.shape
        d = self.head_dim
        qkv = self.w_qkv(x)
        if self.kernels and qkv.is_cuda:
            # One kernel rotates q and k and copies v; its backward writes d(qkv) in one pass.
            return rope_qkv(qkv, cos, sin, self.n_heads, self.n_kv)
        q, k, v = qkv.split([self.n_heads * d, self.n_kv * d, self.n_kv * d], dim=-1)
        q = apply_rope(q.view(b, t, self.n_heads, d), cos, sin)
        k = apply_rope(k.view(b, t, self.n_kv, d), cos, sin)
        return q, k, v.view(b, t, self.n_kv, d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self.project(x, cos, sin)
        out = causal_attention(q, k, v, self.backend)
        return self.w_out(out.flatten(2))


class GroupedTiedAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = config.n_heads, config.kv_heads, config.head_dim
        self.rope_dim = self.head_dim // 2
        self.backend = config.attention_backend
        self.w_q = nn.Linear(config.d_model, self.n_heads * self.head_dim, bias=False)
        # The tied KV states of the groups and the one shared RoPE key, in one GEMM.
        self.w_kv = nn.Linear(config.d_model, self.n_kv * self.head_dim + self.rope_dim, bias=False)
        self.w_out = nn.Linear(self.n_heads * self.head_dim, config.d_model, bias=False)

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, t, _ = x.shape
        d, r = self.head_dim, self.rope_dim
        q = self.w_q(x).view(b, t, self.n_heads, d)
        kv, k_rope = self.w_kv(x).split([self.n_kv * d, r], dim=-1)
        kv = kv.view(b, t, self.n_kv, d)
        # RoPE tables are built for head_dim/2 channels here (the rotated half only).
        q = torch.cat([q[..., : d - r], apply_rope(q[..., d - r :], cos, sin)], dim=-1)
        k_rope = apply_rope(k_rope.view(b, t, 1, r), cos, sin).expand(b, t, self.n_kv, r)
        k = torch.cat([kv[..., : d - r], k_rope], dim=-1)
        return q, k, kv

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self.project(x, cos, sin)
        out = causal_attention(q, k, v, self.backend)
        return self.w_out(out.flatten(2))


def rope_dim(config: ModelConfig) -> int:
    """How many channels of a head RoPE rotates: all of them for GQA, the second half for GTA."""
    return config.head_dim // 2 if config.attention == "gta" else config.head_dim


def attention_layer(config: ModelConfig) -> nn.Module:
    return GroupedTiedAttention(config) if config.attention == "gta" else GroupedQueryAttention(config)
