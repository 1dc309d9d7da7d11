"""The row-tile map of an expert-major assignment list, built on the device in one launch.

Row-tile programs of the grouped GEMMs work on BLOCK_M rows of ONE expert. `tile_map` says which:
tile i covers rows tile_row[i] .. tile_row[i] + BLOCK_M - 1 of expert tile_expert[i], clipped to
the expert's last row. The number of real tiles depends on the per-expert counts, which live on the
device; reading them would cost a host sync (and a graph break under torch.compile), so the map is
padded to the bound M // BLOCK_M + min(E, M) known on the host: the real tiles come first, ordered
by expert, and the padding tiles carry expert E and row M, so their programs return on their first
load.

One kernel instead of the cumsum / searchsorted / gather chain in torch: that chain was a dozen
launches of a few microseconds each, run twice per forward+backward, which at small MoE shapes
added up to a noticeable share of the step (docs/benchmarks.md, MoE section).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Tiles per program, and experts per step of the program's loop over E: the program compares its
# BLOCK_T tile ids against BLOCK_E tile-range ends at a time.
BLOCK_T = 16
BLOCK_E = 256


@triton.jit
def moe_tile_map_kernel(
    expert_offsets,
    tile_expert,
    tile_row,
    E,
    M,
    NUM_TILES,
    BLOCK_M: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """expert_offsets (E+1,) int64 -> tile_expert, tile_row (NUM_TILES,) int64.

    Expert e's tiles are ids end[e] - tiles[e] .. end[e] - 1, where tiles[e] = ceil(count_e /
    BLOCK_M) and end is their inclusive prefix sum. Tile i belongs to the expert e = #{e' : end[e']
    <= i} (a searchsorted, right side), whose first tile id is max{end[e'] <= i} (0 if none); i >= the
    last end gives e = E, a padding tile. Each program recomputes the prefix sum over E (cheap next
    to a launch) so that no program waits on another.
    """
    # Tile ids and tile counts fit int32 (the bound is M // BLOCK_M + E); rows are int64.
    o_t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    m_t = o_t < NUM_TILES
    b_expert = tl.zeros([BLOCK_T], dtype=tl.int32)
    b_first = tl.zeros([BLOCK_T], dtype=tl.int32)
    carry = tl.full([], 0, dtype=tl.int32)
    for i_e in range(0, E, BLOCK_E):
        o_e = i_e + tl.arange(0, BLOCK_E)
        m_e = o_e < E
        b_lo = tl.load(expert_offsets + o_e, mask=m_e, other=0)
        b_hi = tl.load(expert_offsets + o_e + 1, mask=m_e, other=0)
        b_tiles = ((b_hi - b_lo + BLOCK_M - 1) // BLOCK_M).to(tl.int32)
        b_end = carry + tl.cumsum(b_tiles, 0)
        done = (b_end[None, :] <= o_t[:, None]) & m_e[None, :]
        b_expert += tl.sum(done.to(tl.int32), 1)
        b_first = tl.maximum(b_first, tl.max(tl.where(done, b_end[None, :], 0), 1))
        carry += tl.sum(b_tiles, 0)
    m_real = b_expert < E
    b_start = tl.load(expert_offsets + b_expert, mask=m_t & m_real, other=0)
    b_row = tl.where(m_real, b_start + (o_t - b_first).to(tl.int64) * BLOCK_M, M)
    tl.store(tile_expert + o_t, b_expert.to(tl.int64), mask=m_t)
    tl.store(tile_row + o_t, b_row, mask=m_t)


def num_tiles_bound(num_rows: int, num_experts: int, block_m: int) -> int:
    """Tiles of any routing of num_rows rows over num_experts experts: each expert's ceil adds at
    most one partial tile, and at most min(E, M) experts have rows."""
    return num_rows // block_m + min(num_experts, num_rows)


def tile_map(expert_offsets: torch.Tensor, num_rows: int, block_m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row tiles of an expert-major assignment list, on the offsets' device, without a host sync.

    expert_offsets: (E+1,) int64, expert e owns rows offsets[e] .. offsets[e+1]-1 of num_rows (= M).
    Returns (tile_expert, tile_row), each (`num_tiles_bound`,) int64: tile i covers rows
    tile_row[i] .. tile_row[i] + block_m - 1 of expert tile_expert[i], clipped to the expert's last
    row. Tiles are ordered by expert; the trailing padding tiles have tile_expert == E and
    tile_row == M.
    """
    num_experts = expert_offsets.shape[0] - 1
    n = num_tiles_bound(num_rows, num_experts, block_m)
    tile_expert = torch.empty(n, dtype=torch.int64, device=expert_offsets.device)
    tile_row = torch.empty(n, dtype=torch.int64, device=expert_offsets.device)
    if n:
        block_e = min(BLOCK_E, triton.next_power_of_2(num_experts))
        moe_tile_map_kernel[(triton.cdiv(n, BLOCK_T),)](
            expert_offsets,
            tile_expert,
            tile_row,
            num_experts,
            num_rows,
            n,
            BLOCK_M=block_m,
            BLOCK_T=BLOCK_T,
            BLOCK_E=block_e,
            num_warps=4,
        )
    return tile_expert, tile_row
