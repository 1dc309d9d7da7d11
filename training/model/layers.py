"""The Llama-2 building blocks: RMSNorm, rotary position embedding, SwiGLU MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from redpajama.kernels.swiglu import swiglu


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalize in float32 (bf16 sums of squares lose the small components), return x's dtype.
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight.type_as(x)


def rope_tables(seq_len: int, dim: int, theta: float, device: torch.device | None = None):
    """cos and sin of shape (seq_len, dim // 2) for rotating `dim` channels (pairs i, i + dim/2)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, T, H, D) by position; cos/sin are (T, D/2). Half-split layout as in Llama/NeoX."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos = cos[None, :, None, :].to(x.dtype)
    sin = sin[None, :, None, :].to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int, kernels: bool = True) -> None:
        super().__init__()
        self.kernels = kernels
        # Gate and up projections in one matmul: one read of x, one larger (better-filled) GEMM.
        self.w_gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.w_down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = self.w_gate_up(x)
        if self.kernels and gate_up.is_cuda:
            # One pass forward, and a backward that writes d(gate_up) without a concatenation.
            return self.w_down(swiglu(gate_up))
        gate, up = gate_up.chunk(2, dim=-1)
        return self.w_down(F.silu(gate) * up)
