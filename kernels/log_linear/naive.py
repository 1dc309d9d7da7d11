"""Log-linear Mamba-2 in quadratic form (Guo et al. 2025): the ground truth for a future kernel.

Shapes as in `redpajama.kernels.ssd.naive` plus lam (B, T, H, L) >= 0, L >= num_levels(T):
    y_t = sum_{s <= t} lam_t^(level(t, s)) (C_t . B_s) exp(segsum(dt A)[t, s]) dt_s x_s + D x_t.
With every lam == 1 this is Mamba-2's SSD (`ssd_quadratic`). Computes in the inputs' dtype.
"""

from __future__ import annotations

import torch

from redpajama.kernels.log_linear.masks import weighted_mask
from redpajama.kernels.ssd.naive import decay_matrix, expand_groups


def log_linear_quadratic(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    lam: torch.Tensor,
) -> torch.Tensor:
    """y (B, T, H, P): the (T, T) SSD matrix reweighted per Fenwick level by lam (see module doc)."""
    h = x.shape[2]
    bm, cm = expand_groups(Bm, h), expand_groups(Cm, h)
    scores = torch.einsum("bthn,bshn->bhts", cm, bm) * decay_matrix(dt, A) * weighted_mask(lam)
    return torch.einsum("bhts,bshp->bthp", scores, dt[..., None] * x) + D[:, None] * x
