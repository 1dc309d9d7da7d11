"""RoPE on a fused QKV projection in plain PyTorch: the ground truth for the Triton kernels.

Same rotation as `redpajama.training.model.layers.apply_rope` (half-split NeoX/Llama-HF layout), with
the math in float32 and one rounding to the input dtype at the end. In float32 the two agree to
rounding; in bf16 apply_rope rounds cos/sin and each product to bf16 first, so this one is the
more exact reference.
"""

from __future__ import annotations

import torch


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, T, H, D) rotated by cos/sin (T, D/2): [x1*cos - x2*sin, x2*cos + x1*sin] in float32."""
    half = x.shape[-1] // 2
    xf = x.float()
    x1, x2 = xf[..., :half], xf[..., half:]
    cos = cos[None, : x.shape[1], None, :].float()
    sin = sin[None, : x.shape[1], None, :].float()
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(x.dtype)


def rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv_heads: int):
    """qkv (B, T, (n_heads + 2 n_kv_heads) D) -> q (B, T, n_heads, D), k and v (B, T, n_kv_heads, D).

    q and k rotated with rows 0..T-1 of cos/sin (T_max, D/2); v copied. Autograd gives the backward.
    """
    b, t, width = qkv.shape
    d = width // (n_heads + 2 * n_kv_heads)
    q, k, v = qkv.split([n_heads * d, n_kv_heads * d, n_kv_heads * d], dim=-1)
    q = rotate(q.reshape(b, t, n_heads, d), cos, sin)
    k = rotate(k.reshape(b, t, n_kv_heads, d), cos, sin)
    return q, k, v.reshape(b, t, n_kv_heads, d).clone()
