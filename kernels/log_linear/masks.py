"""Log-linear attention's hierarchical (Fenwick-tree) masks (Guo et al. 2025, "Log-Linear Attention").

For query t and key s <= t the level is
    level(t, s) = 0 if s == t else floor(log2(t xor s)) + 1 = bit_length(t xor s).
For fixed t, the keys s < t at level l >= 1 are those that agree with t above bit l-1, have bit l-1
clear where t has it set, and any lower bits: the contiguous range
    [(t >> l) << l, ((t >> l) << l) + 2^(l-1)),    non-empty iff bit l-1 of t is set,
i.e. the Fenwick-tree partition of the prefix [0, t) into power-of-two buckets, one per set bit of t.
Levels run 0..num_levels(T)-1 with num_levels(T) = bit_length(T - 1) + 1 = ceil(log2 T) + 1 for T > 1.
"""

from __future__ import annotations

import torch


def num_levels(t: int) -> int:
    """Levels a sequence of t tokens uses: 1 + bit_length(t - 1) (1 for t <= 1)."""
    return 1 + max(t - 1, 0).bit_length()


def level_matrix(t: int, device=None) -> torch.Tensor:
    """(T, T) int64: level(i, j) for keys j <= i, -1 above the diagonal (j > i, not attended).

    Vectorised: bit_length(i xor j) as the count of k with (i xor j) >> k != 0, k < bit_length(T-1).
    """
    o = torch.arange(t, dtype=torch.int64, device=device)
    xor = o[:, None] ^ o[None, :]
    level = torch.zeros(t, t, dtype=torch.int64, device=device)
    for k in range(max(t - 1, 0).bit_length()):
        level += (xor >> k) != 0
    return level.masked_fill(o[None, :] > o[:, None], -1)


def weighted_mask(lam: torch.Tensor) -> torch.Tensor:
    """lam (B, T, H, L) per-query level weights, L >= num_levels(T) -> (B, H, T, T).

    out[b, h, t, s] = lam[b, t, h, level(t, s)] for s <= t, 0 above the diagonal. Differentiable in lam.
    """
    b, t, h, nl = lam.shape
    if nl < num_levels(t):
        raise ValueError(f"lam has L={nl} levels, T={t} needs at least {num_levels(t)}")
    level = level_matrix(t, device=lam.device)
    idx = level.clamp(min=0)[None, None].expand(b, h, t, t)
    out = torch.gather(lam.permute(0, 2, 1, 3), 3, idx)  # (B, H, T, L) gathered along L -> (B, H, T, T)
    return out.masked_fill(level < 0, 0)
