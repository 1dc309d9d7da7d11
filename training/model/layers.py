"""The Llama-2 building blocks: RMSNorm, rotary position embedding, SwiGLU MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from redpajama.kernels.rmsnorm import add_rmsnorm, rmsnorm
from redpajama.kernels.rmsnorm.naive import rmsnorm as rmsnorm_reference
from redpajama.kernels.swiglu import swiglu


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, kernels: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.kernels = kernels  # on CUDA, our Triton kernels (kernels/rmsnorm)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernels and x.is_cuda:
            return rmsnorm(x, self.weight, self.eps)
        # Normalized in float32 (bf16 sums of squares lose the small components), in x's dtype.
        return rmsnorm_reference(x, self.weight, self.eps)

    def add_and_norm(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, norm(h)) with h = x + y, the residual stream's step; y None: h = x."""
        if y is None:
            return x, self(x)
        # A module output in another dtype than the stream (float32 from a module that leaves
        # autocast) takes PyTorch's promoting add, as the unfused model does.
        if self.kernels and x.is_cuda and y.dtype == x.dtype:
            # One kernel each way: the add, the norm and their backward (what Inductor would fuse,
            # but chosen here, the same in every model that uses it).
            return add_rmsnorm(x, y, self.weight, self.eps)
        h = x + y
        return h, self(h)


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
