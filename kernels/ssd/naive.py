"""Mamba-2 SSD (scalar-identity A per head) in plain PyTorch: the ground truth for the chunked and
Triton paths.

Shapes (all functions): x (B, T, H, P); dt (B, T, H), already softplus'ed (> 0); A (H,), negative;
Bm, Cm (B, T, G, N) with H % G == 0, head h reading group h // (H // G); D (H,) skip.
Recurrence per head, state h (N, P):
    h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T,        y_t = C_t^T h_t + D x_t
Quadratic form, the same thing as a masked (T, T) matrix:
    y_t = sum_{s <= t} (C_t . B_s) exp(segsum(dt A)[t, s]) dt_s x_s + D x_t,
    segsum(a)[t, s] = sum_{r = s+1..t} a_r for s <= t, -inf above the diagonal.
Both compute in the inputs' dtype (pass float64 for a tight reference); autograd gives the backward.
"""

from __future__ import annotations

import torch


def expand_groups(m: torch.Tensor, h: int) -> torch.Tensor:
    """(B, T, G, N) -> (B, T, H, N): head i reads group i // (H // G)."""
    g = m.shape[2]
    if h % g != 0:
        raise ValueError(f"H={h} is not a multiple of G={g}")
    return m.repeat_interleave(h // g, dim=2)


def segsum(a: torch.Tensor) -> torch.Tensor:
    """a (..., T) -> (..., T, T): out[..., t, s] = sum_{r=s+1..t} a_r for s <= t, -inf for s > t.

    Built from masked cumulative sums rather than a difference of prefix sums, so there is no
    cancellation between two large prefix sums (and exp of the -inf entries gives exact zeros).
    """
    t = a.shape[-1]
    a = a[..., None].expand(*a.shape, t)  # (..., T_t, T_s) holding a_t in row t
    strict = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device), diagonal=-1)
    a = a.masked_fill(~strict, 0)
    out = torch.cumsum(a, dim=-2)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device), diagonal=0)
    return out.masked_fill(~causal, float("-inf"))


def ssd_recurrent(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    return_final_state: bool = False,
):
    """The sequential scan, one step per token. Returns y (B, T, H, P) [and the final state
    (B, H, N, P)]."""
    b, t, h, p = x.shape
    bm, cm = expand_groups(Bm, h), expand_groups(Cm, h)
    state = x.new_zeros(b, h, bm.shape[-1], p)
    ys = []
    for i in range(t):
        decay = torch.exp(dt[:, i] * A)  # (B, H)
        inp = torch.einsum("bhn,bhp->bhnp", bm[:, i], dt[:, i, :, None] * x[:, i])
        state = decay[:, :, None, None] * state + inp
        ys.append(torch.einsum("bhn,bhnp->bhp", cm[:, i], state) + D[:, None] * x[:, i])
    y = torch.stack(ys, dim=1) if ys else torch.empty_like(x)
    return (y, state) if return_final_state else y


def decay_matrix(dt: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """dt (B, T, H), A (H,) -> L (B, H, T, T) = exp(segsum(dt A)): the causal decay, 0 above the diagonal."""
    return torch.exp(segsum((dt * A).transpose(1, 2)))


def ssd_quadratic(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """The (T, T) masked-matrix form ("attention" view). Returns y (B, T, H, P)."""
    h = x.shape[2]
    bm, cm = expand_groups(Bm, h), expand_groups(Cm, h)
    scores = torch.einsum("bthn,bshn->bhts", cm, bm) * decay_matrix(dt, A)
    return torch.einsum("bhts,bshp->bthp", scores, dt[..., None] * x) + D[:, None] * x
