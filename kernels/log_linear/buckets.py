"""The Fenwick bucket states of log-linear Mamba-2 in Triton: a sequential pass over the chunks, as
SSD's state passing, with one state per chunk-level held in registers.

For chunk c and level j = 1..J (J = bit_length(NC - 1)) the bucket of c is the chunk range
[(c >> j) << j, ((c >> j) << j) + 2^(j-1)), non-empty iff bit j-1 of c is set, and its state H_j(c)
is the sum of those chunks' own end states decayed to c's start (`chunked.bucket_states`). Going
from chunk c to m = c + 1, with k the trailing zeros of m (m's lowest set bit is bit k), the
buckets change as a binary counter carries:
    H_(k+1)(m) = exp(L_c) sum_{j <= k} H_j(c) + S_c    (c's levels 1..k and c itself merge),
    H_j(m)     = exp(L_c) H_j(c)                         for j > k + 1 (the same ranges, one chunk on),
    H_j(m)     = 0                                       for j <= k,
with S_c chunk c's own end state and L_c its total dt A. The reverse pass is that recurrence
transposed, with the adjoint G(m) of H(m):
    dS_c   = G_(k+1)(m),
    dL_c   = exp(L_c) (G_(k+1)(m) . sum_{j <= k} H_j(c) + sum_{j > k+1} G_j(m) . H_j(c)),
    G_j(c) = dH_j(c) + exp(L_c) G_(k+1)(m) for j <= k, dH_j(c) + exp(L_c) G_j(m) for j > k + 1,
             dH_(k+1)(c) for j = k + 1,
where dH(c) is what chunk c's own outputs send to its buckets. Every sum runs in float32 in a fixed
order (no atomics): the result is deterministic.

Only non-empty buckets are written and read: the entries of an empty one (about half of them) are
left as they were in `h_lv`, so every reader skips the levels whose bit of the chunk index is clear.
One program per (batch * head, block of the flattened (N, P) state).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from redpajama.kernels.ssd.ssd import state_block

# (elements of the flattened (N, P) state per program, warps) of the forward and the reverse pass.
# Both loops take one chunk a step, so what counts is programs in flight and the cost of a step: a
# sweep of 64-512 elements at 1-8 warps on an H200 at LL-A (B 4, 128 chunks, H 24, N 128, P 64) put
# the reverse pass at 1144 us with 128 elements on one warp (its level sums stay within the warp)
# against 2165 at (256, 4) and up to 18.5 ms; the forward moved less (563-709 us).
FWD_LAUNCH = (128, 2)
BWD_LAUNCH = (128, 1)


@triton.jit
def _carry_masks(m, o_j):
    """For m >= 1 and rows o_j (row r holds level r + 1): the rows below, at and above m's lowest set
    bit k, i.e. the levels that merge (j <= k), the one they merge into (j = k + 1) and the ones that
    carry on (j > k + 1)."""
    low_clear = (m & ((1 << o_j) - 1)) == 0  # bits of m below r are all clear
    bit = ((m >> o_j) & 1) == 1
    return low_clear & ~bit, low_clear & bit, ~low_clear


@triton.jit
def bucket_states_fwd_kernel(
    states,
    a_last,
    h_lv,
    NC,
    J,
    H: tl.constexpr,
    NP: tl.constexpr,
    BLOCK_J: tl.constexpr,
    BLOCK: tl.constexpr,
):
    i_b64, i_h, o_k, m_k = state_block(H, NP, BLOCK)
    o_j = tl.arange(0, BLOCK_J)
    b_h = tl.zeros([BLOCK_J, BLOCK], dtype=tl.float32)
    for i_c in range(0, NC):
        o_lv, m_lv = _nonempty_rows(i_b64, i_c, NC, J, H, i_h, NP, o_j, o_k, m_k)
        tl.store(h_lv + o_lv, b_h, mask=m_lv)
        b_s = tl.load(states + ((i_b64 * NC + i_c) * H + i_h) * NP + o_k, mask=m_k, other=0.0)
        b_decay = tl.exp(tl.load(a_last + (i_b64 * H + i_h) * NC + i_c))
        below, at, above = _carry_masks(i_c + 1, o_j)
        b_merged = b_decay * tl.sum(tl.where(below[:, None], b_h, 0.0), axis=0) + b_s
        b_h = tl.where(at[:, None], b_merged[None, :], tl.where(above[:, None], b_decay * b_h, 0.0))


@triton.jit
def bucket_states_bwd_kernel(
    a_last,
    h_lv,
    d_hlv,
    d_states,
    d_last_part,
    NC,
    J,
    H: tl.constexpr,
    NP: tl.constexpr,
    BLOCK_J: tl.constexpr,
    BLOCK: tl.constexpr,
):
    i_b64, i_h, o_k, m_k = state_block(H, NP, BLOCK)
    i_k, n_k = tl.program_id(1), tl.num_programs(1)
    o_j = tl.arange(0, BLOCK_J)
    b_g = tl.zeros([BLOCK_J, BLOCK], dtype=tl.float32)  # the adjoint of H(c + 1); none after the last
    # Chunk c's bucket states and their direct gradient are loaded one step ahead, so that the loads
    # can overlap the step before (at 256 elements and 4 warps it timed the same, 2.15 ms).
    b_h_next, b_d_next = _load_rows(h_lv, d_hlv, i_b64, NC - 1, NC, J, H, i_h, NP, o_j, o_k, m_k)
    for i_r in range(0, NC):
        i_c = NC - 1 - i_r
        b_h, b_d = b_h_next, b_d_next
        b_h_next, b_d_next = _load_rows(h_lv, d_hlv, i_b64, i_c - 1, NC, J, H, i_h, NP, o_j, o_k, m_k)
        b_decay = tl.exp(tl.load(a_last + (i_b64 * H + i_h) * NC + i_c))
        below, at, above = _carry_masks(i_c + 1, o_j)
        b_gat = tl.sum(tl.where(at[:, None], b_g, 0.0), axis=0)
        tl.store(d_states + ((i_b64 * NC + i_c) * H + i_h) * NP + o_k, b_gat, mask=m_k)
        b_dl = tl.sum(b_gat * tl.sum(tl.where(below[:, None], b_h, 0.0), axis=0), axis=0)
        b_dl += tl.sum(tl.sum(tl.where(above[:, None], b_g * b_h, 0.0), axis=1), axis=0)
        tl.store(d_last_part + ((i_b64 * H + i_h) * NC + i_c) * n_k + i_k, b_decay * b_dl)
        b_g = tl.where(below[:, None], b_decay * b_gat[None, :], tl.where(above[:, None], b_decay * b_g, 0.0))
        b_g += b_d


@triton.jit
def _nonempty_rows(i_b64, i_c, NC, J, H, i_h, NP, o_j, o_k, m_k):
    """Offsets of chunk i_c's (levels, block) rows in a (B, NC, J, H, N, P) tensor, and the mask of
    its non-empty buckets (none for i_c < 0)."""
    m_j = (((i_c >> o_j) & 1) == 1) & (o_j < J) & (o_j + i_c >= o_j)  # i_c >= 0, as a row vector
    o_lv = (((i_b64 * NC + i_c) * J + o_j[:, None]) * H + i_h) * NP + o_k[None, :]
    return o_lv, m_j[:, None] & m_k[None, :]


@triton.jit
def _load_rows(h_lv, d_hlv, i_b64, i_c, NC, J, H, i_h, NP, o_j, o_k, m_k):
    """Chunk i_c's non-empty bucket rows of h_lv and d_hlv (zeros elsewhere, and for i_c < 0)."""
    o_lv, m_lv = _nonempty_rows(i_b64, i_c, NC, J, H, i_h, NP, o_j, o_k, m_k)
    return tl.load(h_lv + o_lv, mask=m_lv, other=0.0), tl.load(d_hlv + o_lv, mask=m_lv, other=0.0)


def _launch_shape(states: torch.Tensor, levels: int, launch: tuple[int, int]):
    b, nc, h, n, p = states.shape
    block = min(launch[0], triton.next_power_of_2(n * p))
    grid = (b * h, triton.cdiv(n * p, block))
    meta = dict(H=h, NP=n * p, BLOCK_J=triton.next_power_of_2(levels), BLOCK=block, num_warps=launch[1])
    return grid, meta


def bucket_states(states: torch.Tensor, a_last: torch.Tensor, levels: int) -> torch.Tensor:
    """states (B, NC, H, N, P) and a_last (B, H, NC), float32 and contiguous, levels >= 1 ->
    h_lv (B, NC, levels, H, N, P) float32: chunk c's level-j bucket state where bit j-1 of c is set;
    the other entries are left unwritten (`chunked.bucket_states` has zeros there)."""
    b, nc, h, n, p = states.shape
    h_lv = torch.empty(b, nc, levels, h, n, p, dtype=torch.float32, device=states.device)
    grid, meta = _launch_shape(states, levels, FWD_LAUNCH)
    bucket_states_fwd_kernel[grid](states, a_last, h_lv, nc, levels, **meta)
    return h_lv


def bucket_states_bwd(a_last: torch.Tensor, h_lv: torch.Tensor, d_hlv: torch.Tensor):
    """The reverse pass: a_last (B, H, NC), the forward's h_lv and its gradient d_hlv (B, NC, J, H, N,
    P), both read only where the bucket is non-empty -> (d_states (B, NC, H, N, P), d_last (B, H, NC)),
    float32: the gradients of the chunks' own end states and of their totals."""
    b, nc, levels, h, n, p = h_lv.shape
    d_states = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=h_lv.device)
    grid, meta = _launch_shape(d_states, levels, BWD_LAUNCH)
    d_last_part = torch.empty(b, h, nc, grid[1], dtype=torch.float32, device=h_lv.device)
    bucket_states_bwd_kernel[grid](a_last, h_lv, d_hlv, d_states, d_last_part, nc, levels, **meta)
    return d_states, d_last_part.sum(-1)
