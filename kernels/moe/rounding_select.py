"""Token rounding's selection on the GPU: each expert's k largest router keys, by radix select.

Token rounding (routing.route_token_rounding) gives expert e the counts[e] tokens of largest key in
its column of a (T, E) key matrix, ties to the lower token, where counts[e] is the expert's load
moved to a tile multiple. A stable argsort of all T keys of every column does it, and is the CPU
path; on an H200 at T = 16384, E = 256 that sort and the scatter back to token order took ~0.45 ms
of the routing's 0.87 (docs/benchmarks.md, MoE section). Only the k-th largest key of each column
matters, so one program per column finds it by radix select and marks the tokens in one more pass.

Keys are float32 (-0.0 read as 0.0). Their bits, with a negative float's 31 magnitude bits flipped, order as signed
integers in the float order; offset by 2^31 they become codes in [0, 2^32) that order as the floats
do. Radix select takes the code 8 bits at a time, most significant first: a histogram of the next
digit over the codes that share the digits found so far says which digit the k-th largest code has,
and how many of the codes ahead of it are already taken. After four passes the code v and the number
r of tokens with code v still to take are known; a last pass in token order marks every code > v and
the first r codes == v.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Keys a step of a program's loop over its column: 4 warps, 8 keys a thread.
BLOCK_T = 1024


@triton.jit
def _codes(row, o_t, m_t):
    """Order-preserving int64 codes in [0, 2^32) of the float32 keys row[o_t]."""
    x = tl.load(row + o_t, mask=m_t, other=0.0)
    # -0.0 and 0.0 are one key (a sort ties them), so both get 0.0's code.
    bits = tl.where(x == 0.0, 0, x.to(tl.int32, bitcast=True))
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return ordered.to(tl.int64) + 2147483648


@triton.jit
def rounding_select_kernel(key_t, counts, selected, T, BLOCK_T: tl.constexpr):
    """key_t (E, T) float32, counts (E,) int64 -> selected (E, T) uint8: 1 for the counts[e] largest
    keys of row e, ties to the lower column; program e takes row e."""
    i_e = tl.program_id(0).to(tl.int64)
    row = key_t + i_e * T
    k = tl.load(counts + i_e)
    o_digit = tl.arange(0, 256)
    prefix = tl.full([], 0, dtype=tl.int64)  # the digits of the k-th largest code found so far
    remaining = k  # of the codes that start with prefix, how many are still to take
    for shift in tl.static_range(24, -1, -8):
        hist = tl.zeros([256], dtype=tl.int32)
        for i_t in range(0, T, BLOCK_T):
            o_t = i_t + tl.arange(0, BLOCK_T)
            m_t = o_t < T
            code = _codes(row, o_t, m_t)
            match = m_t & ((code >> (shift + 8)) == prefix)
            hist += tl.histogram(((code >> shift) & 255).to(tl.int32), 256, mask=match)
        # at_least[d]: codes with this digit or a higher one. It falls with d; the k-th largest
        # code's digit is the last d where it still reaches `remaining`.
        at_least = tl.sum(hist, 0) - tl.cumsum(hist, 0) + hist
        digit = tl.sum((at_least >= remaining).to(tl.int32), 0) - 1
        remaining -= tl.sum(tl.where(o_digit > digit, hist, 0), 0)
        prefix = prefix * 256 + digit
    out = selected + i_e * T
    equal_before = tl.full([], 0, dtype=tl.int64)
    for i_t in range(0, T, BLOCK_T):
        o_t = i_t + tl.arange(0, BLOCK_T)
        m_t = o_t < T
        code = _codes(row, o_t, m_t)
        equal = m_t & (code == prefix)
        rank = equal_before + tl.cumsum(equal.to(tl.int64), 0)
        take = (code > prefix) | (equal & (rank <= remaining))
        tl.store(out + o_t, (take & (k > 0)).to(tl.uint8), mask=m_t)
        equal_before += tl.sum(equal.to(tl.int64), 0)


def take_largest(key: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(E, T) bool: row e marks the counts[e] tokens of largest key in column e of key (T, E)
    float32, ties to the lower token; 0 <= counts[e] <= T (int64, on key's device)."""
    t, e = key.shape
    key_t = key.t().contiguous()
    selected = torch.empty((e, t), dtype=torch.uint8, device=key.device)
    if t and e:
        rounding_select_kernel[(e,)](
            key_t, counts, selected, t, BLOCK_T=min(BLOCK_T, max(16, triton.next_power_of_2(t)))
        )
    return selected.view(torch.bool)
