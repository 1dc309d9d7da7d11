"""Log-linear Gated DeltaNet (Guo et al. 2025, "Log-Linear Attention"): the ground truths.

Gated DeltaNet (Yang et al. 2025) per head, state S (K, V), decay alpha_t = exp(g_t) in (0, 1],
write strength beta_t in [0, 1]:
    S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,      o_t = S_t^T q_t.
Unrolled, o_t = sum_{s <= t} P[t, s] v_s with
    P[t, s] = beta_s q_t^T (prod_{r = s+1..t} alpha_r (I - beta_r k_r k_r^T)) k_s,
and in closed form, Gamma[t, s] = exp(g_{s+1} + ... + g_t),
    P = (Q K^T * Gamma * causal) (I + diag(beta) (K K^T * Gamma * strictly lower))^(-1) diag(beta).
The log-linear model keeps one such state per Fenwick bucket of the prefix (kernels/log_linear/
masks.py): every bucket state follows the same transitions, and query t reads bucket l weighted by
lam_t^l, so
    o_t = sum_{s <= t} lam_t^(level(t, s)) P[t, s] v_s,      O = (P * M^H) V.
With every lam == 1 this is Gated DeltaNet.

Shapes: q, k (B, T, H, K); v (B, T, H, V); g (B, T, H) log decays (<= 0); beta (B, T, H);
lam (B, T, H, L) with L >= num_levels(T). No scaling of q (the layer's job). Both functions compute in
the inputs' dtype (pass float64 for a tight reference); autograd gives the backward.
"""

from __future__ import annotations

import torch

from redpajama.kernels.log_linear.masks import num_levels, weighted_mask
from redpajama.kernels.ssd.naive import segsum


def check_inputs(q, k, v, g, beta, lam) -> None:
    """Shapes as in the module doc, one device, floating point; else a ValueError naming the input."""
    named = dict(q=q, k=k, v=v, g=g, beta=beta, lam=lam)
    for name, x in named.items():
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(
                f"{name} must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}"
            )
        if x.device != q.device:
            raise ValueError(f"{name} is on {x.device}, q on {q.device}")
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must be (B, T, H, K) alike, got {tuple(q.shape)} and {tuple(k.shape)}")
    bth = tuple(q.shape[:3])
    want = dict(v=(*bth, v.shape[-1]), g=bth, beta=bth, lam=(*bth, lam.shape[-1]))
    for name, shape in want.items():
        if tuple(named[name].shape) != shape or named[name].dim() != len(shape):
            raise ValueError(
                f"{name} must have shape {shape} for q of {tuple(q.shape)}, got {tuple(named[name].shape)}"
            )
    if lam.shape[-1] < num_levels(q.shape[1]):
        raise ValueError(
            f"lam has L={lam.shape[-1]} levels, T={q.shape[1]} needs at least {num_levels(q.shape[1])}"
        )


def gdn_matrix(q, k, g, beta) -> torch.Tensor:
    """P (B, H, T, T) of Gated DeltaNet in closed form (module doc): o = P v."""
    t = q.shape[1]
    gamma = torch.exp(segsum(g.permute(0, 2, 1)))  # (B, H, T, T), zero above the diagonal
    qk = torch.einsum("bthk,bshk->bhts", q, k) * gamma
    kk = torch.einsum("bthk,bshk->bhts", k, k) * gamma
    strict = torch.tril(torch.ones(t, t, dtype=torch.bool, device=q.device), diagonal=-1)
    b_t = beta.permute(0, 2, 1)  # (B, H, T)
    lower = torch.eye(t, dtype=q.dtype, device=q.device) + b_t[..., None] * kk.masked_fill(~strict, 0)
    # (I + L)^(-1) diag(beta) as the solution X of (I + L) X = diag(beta).
    rhs = torch.diag_embed(b_t)
    return qk @ torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)


def log_linear_gdn_quadratic(q, k, v, g, beta, lam) -> torch.Tensor:
    """o (B, T, H, V) = (P * M^H) v: Gated DeltaNet's matrix reweighted per Fenwick level by lam."""
    check_inputs(q, k, v, g, beta, lam)
    scores = gdn_matrix(q, k, g, beta) * weighted_mask(lam)
    return torch.einsum("bhts,bshv->bthv", scores, v)


def log_linear_gdn_step(states, t: int, q_t, k_t, v_t, g_t, beta_t, lam_t):
    """Token t of a sequence, recurrently, in O(log t) state and work (decoding).

    states (B, H, S, K, V): the Fenwick bucket states of t's prefix, level l at index l, with
    S = bit_length(t) + 1 (at t = 0: zeros of S = 1). Level l >= 1 holds keys
    [(t >> l) << l, ((t >> l) << l) + 2^(l-1)) when bit l-1 of t is set. q_t, k_t (B, H, K);
    v_t (B, H, V); g_t, beta_t (B, H); lam_t (B, H, L) with L >= S.
    Every state takes the token's transition, the token writes itself into level 0, the output is
    o_t = sum_l lam_t^l S_l^T q_t; then the states move to t + 1's buckets: with p trailing zeros in
    t + 1, levels 0..p merge into level p + 1 (a new level when t + 1 is a power of two).
    Returns (o_t (B, H, V), the states of t + 1's prefix).
    """
    levels = states.shape[2]
    if levels != t.bit_length() + 1 or lam_t.shape[-1] < levels:
        raise ValueError(
            f"token {t} needs states of {t.bit_length() + 1} levels and lam of at least as many; "
            f"got {levels} and {lam_t.shape[-1]}"
        )
    eye = torch.eye(k_t.shape[-1], dtype=k_t.dtype, device=k_t.device)
    b_t = beta_t[..., None, None]
    trans = torch.exp(g_t)[..., None, None] * (
        eye - b_t * k_t[..., :, None] * k_t[..., None, :]
    )  # (B, H, K, K)
    states = torch.einsum("bhij,bhljv->bhliv", trans, states)
    own = b_t * k_t[..., :, None] * v_t[..., None, :]
    states = torch.cat([states[:, :, :1] + own[:, :, None], states[:, :, 1:]], dim=2)
    read = torch.einsum("bhk,bhlkv->bhlv", q_t, states)
    o_t = torch.einsum("bhl,bhlv->bhv", lam_t[..., :levels], read)
    p = ((t + 1) & -(t + 1)).bit_length() - 1  # trailing zeros of t + 1
    if p + 1 == levels:
        states = torch.cat([states, torch.zeros_like(states[:, :, :1])], dim=2)
    merged = states[:, :, : p + 1].sum(2, keepdim=True)
    return o_t, torch.cat([torch.zeros_like(states[:, :, : p + 1]), merged, states[:, :, p + 2 :]], dim=2)


def log_linear_gdn_recurrent(q, k, v, g, beta, lam) -> torch.Tensor:
    """The same output token by token (`log_linear_gdn_step`), one state per Fenwick level: the
    paper's recurrent form."""
    check_inputs(q, k, v, g, beta, lam)
    b, t, h, dk = k.shape
    states = q.new_zeros(b, h, 1, dk, v.shape[-1])
    out = []
    for i in range(t):
        o_t, states = log_linear_gdn_step(
            states, i, q[:, i], k[:, i], v[:, i], g[:, i], beta[:, i], lam[:, i]
        )
        out.append(o_t)
    return torch.stack(out, dim=1)
