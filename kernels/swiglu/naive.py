"""SwiGLU in plain PyTorch: the ground truth the Triton kernels are tested against."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up for gate_up (..., 2H) = [gate | up]; (..., H) in gate_up's dtype, math in fp32.

    Same split as `redpajama.training.model.layers.SwiGLU` (`chunk(2, dim=-1)`). Autograd gives the
    backward.
    """
    gate, up = gate_up.float().chunk(2, dim=-1)
    return (F.silu(gate) * up).to(gate_up.dtype)
