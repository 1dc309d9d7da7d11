"""The router's top-K experts of every token on the GPU, K passes of a row maximum.

`torch.topk(k, dim=-1)` over (T, E) router scores runs one radix select per row: at T = 16384,
E = 256, K = 8 on an H200 it took 248 us, most of a top-K routing's GPU time (docs/benchmarks.md,
MoE section). E is small, so one program holds a block of whole rows in registers and takes the
row maximum K times, masking each winner out: one read of the scores and K in-register reductions.
Ties go to the lower expert, as a stable descending sort orders them (torch.topk leaves tie order
unspecified), so the CPU path (`routing.topk_experts`, a stable sort) and this one agree exactly.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Elements a program holds: rows of next_power_of_2(E) columns, 16 a thread at 4 warps.
BLOCK_ELEMENTS = 2048


@triton.jit
def router_topk_kernel(x, indices, T, E, K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr):
    """x (T, E) float -> indices (T, K) int64: row t's K largest columns, largest first, ties to
    the lower column. Program i takes rows i * BLOCK_T .. + BLOCK_T."""
    o_t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    o_e = tl.arange(0, BLOCK_E)
    m_t = o_t < T
    m_e = o_e < E
    b_x = tl.load(x + o_t[:, None] * E + o_e[None, :], mask=m_t[:, None] & m_e[None, :], other=float("-inf"))
    b_x = b_x.to(tl.float32)
    alive = m_t[:, None] & m_e[None, :]  # columns still in the running: real, not yet taken
    nan = b_x != b_x
    for i_k in range(K):
        # A NaN ranks above everything, as in a sort: a row's NaNs go first, lowest column first.
        any_nan = tl.max((alive & nan).to(tl.int32), 1) > 0
        b_max = tl.max(tl.where(alive & ~nan, b_x, float("-inf")), 1)
        hit = alive & tl.where(any_nan[:, None], nan, b_x == b_max[:, None])
        b_idx = tl.min(tl.where(hit, o_e[None, :], BLOCK_E), 1)
        tl.store(indices + o_t * K + i_k, b_idx.to(tl.int64), mask=m_t)
        alive = alive & (o_e[None, :] != b_idx[:, None])


def topk_experts_gpu(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(T, K) int64 indices of each row's k largest scores (T, E), largest first, ties to the lower
    expert, NaN above everything (the order of a stable descending sort)."""
    t, e = scores.shape
    out = torch.empty((t, k), dtype=torch.int64, device=scores.device)
    block_e = triton.next_power_of_2(e)
    block_t = max(1, BLOCK_ELEMENTS // block_e)
    if t:
        router_topk_kernel[(triton.cdiv(t, block_t),)](
            scores.contiguous(), out, t, e, K=k, BLOCK_T=block_t, BLOCK_E=block_e, num_warps=4
        )
    return out
