"""Decode attention over a paged KV cache in Triton (and, for GLA and MLA on Hopper, Gluon): GTA
(grouped-tied) and GLA (grouped-latent).

Paged cache: token rows live in pages of `page_size` tokens; block_table int32 (B, max_pages) maps
page j of sequence b to physical page block_table[b, j]; seq_lens int32 (B,) are the sequence
lengths including the Q new tokens. Query i of a sequence (Q = 1, or Q > 1 for speculative
decoding) sits at position seq_len - Q + i and attends causally to keys 0 .. seq_len - Q + i.

Both ops are one kernel over a per-group cache C (num_pages, page_size, G, Dc) and a shared RoPE key
R (num_pages, page_size, Dr): scores = qa . C[:, :Ka] + qr . R, values = C (all Dc columns).
GTA: C = kv (Dc = D), Ka = D/2, qa = q[:D/2], qr = q[D/2:], Dr = D/2. GLA: C = latent (Dc = Dl),
Ka = Dl, qa = q_latent, qr = q_rope.

One program per (sequence, group) serves all H/G heads of the group and all Q query positions as
the Q*H/G rows of its tiles, so each cache tile is read from memory once per group (not once per
head: the arithmetic intensity of GTA/GLA decode). Where those rows would not fit one program's
registers (MLA: 128 heads on a 512-wide latent), they are split into blocks of `max_rows`, one
program each; the blocks of a group read the same cache tiles, mostly from L2. The same loaded tile
C[BS, Dc] feeds the score product (qa zero-padded beyond Ka) and the value product. Tiles of BS
tokens may span pages: each token's physical row is looked up in the block table. Online softmax in
base 2, float32 accumulation.

Split over the sequence (flash-decoding): (sequence, group, row block) programs alone are too few to
fill a GPU (256 at B = 128 with GLA-2 or MLA on a 132-SM H200), so each is split S ways along
the keys. Split s takes keys s*chunk .. (s+1)*chunk - 1 of its sequence, chunk a whole number of
tiles sized from the block table's capacity max_pages * page_size (known on the host: seq_lens is
never read there), and writes a float32 partial: its output normalized over its own keys and the
base-2 log-sum-exp of its scores (-inf for a split with no visible key: past the sequence's end, or
beyond a row's causal limit). A second small kernel merges the S partials of each output row,
weighting each by 2^(lse_s - max lse). S = 1 writes the output directly (no partials, no merge).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch
import triton
import triton.language as tl

from redpajama.kernels.decode.keys_major import (
    paged_decode_keys_major_kernel,
    paged_decode_keys_major_tma_kernel,
)
from redpajama.kernels.decode.row_major import paged_decode_kernel, paged_decode_tma_kernel

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_DIM = 576  # DeepSeek's MLA latent + RoPE width; the (BM, Dc) accumulator lives in registers


@dataclass(frozen=True)
class Config:
    """bs: tokens of a cache tile; warps, stages: the launch; max_rows: query rows (query positions
    x heads of the group) one program takes at most, its (rows, Dc) float32 accumulator living in
    registers; a group with more rows is split over several programs. min_programs: the programs to
    aim for, reached by splitting each sequence into up to that many key ranges of >= 2 tiles.
    keys_major: run the transposed kernel (keys_major.py), for groups of few rows; otherwise the
    row-major one (row_major.py). tma: that kernel's variant that loads each tile as one TMA
    rectangle, where `tma_fits` (tiles inside pages, boxes of <= 256, 16-byte aligned rows);
    elsewhere the same config gathers. warp_specialized: on a Hopper GPU, run the row-major TMA
    case as a warp-specialized Gluon kernel where one applies (`ws_fits`): 16-bit caches and
    either Dc <= 256 in blocks of 64 or 128 rows, `warps` one warpgroup (4) per 64 rows
    (row_major_ws.py), or Dc = 512 in blocks of 64 rows at 4 warps (wide_latent_ws.py); stages
    are its tile buffers. pair_groups: where `pairs_fit` (GTA's groups of Dc 128 on a Hopper GPU),
    run two adjacent groups a program as one tile of 2 x Dc columns through row_major_ws.py
    (GP = 2), one warpgroup for both groups' rows; elsewhere this config's own kernel."""

    bs: int
    warps: int
    stages: int
    max_rows: int
    min_programs: int
    keys_major: bool = False
    tma: bool = False
    warp_specialized: bool = False
    pair_groups: bool = False


# The interpreter (tests): 16-token tiles, so the tiny test pages (size 8, 5, 1) span tiles and pages;
# 8 rows, so the tests' groups of up to 12 rows are split over programs; 64 programs, far more than
# the tests' B*G*row blocks (<= 16), so every sequence of >= 2 tiles' capacity is split too.
INTERPRETER_CONFIG = Config(16, 1, 1, 8, 64)
# One program per SM of an H200 (132 SMs): splitting only where the (sequence, group, row block)
# programs alone would leave SMs idle (small batches). At DEC-A's B = 128 (256-1024 programs) every
# split measured slower than none (benchmarks/decode_attention.py --splits, docs/benchmarks.md).
GPU_MIN_PROGRAMS = 132


def config_for(device: torch.device, dc: int, rows: int) -> Config:
    """GPU tiles by cache width Dc and query rows of a group (`rows` = Q x heads per group).

    Chosen by `benchmarks/decode_attention.py --sweep` at DEC-A (B 128, 8K context, Q = 1 and 2;
    docs/benchmarks.md), with register and shared-memory figures from offline ptxas for sm_90a
    (benchmarks/kernel_registers.py). For the TMA kernels, stages are tile buffers: n stages issue
    each tile's copy n - 1 tiles ahead (since session 9, when the page of a tile stopped being a
    load in the loop, keys_major.WINDOW; before, the pipeliner kept 2-3 buffers whatever the stages).
    - GTA (Dc 128), up to 32 rows (Q = 1, 2 at 16 heads a group): the transposed kernel
      (keys_major.py), whose MMAs take the tile's tokens as M. Q = 1: 64-token tiles, 2 stages,
      585 us against 622 for the best row-major tiles, and each tile one TMA rectangle where the
      pages allow (598 us against 624 gathered, same run). Q = 2: 64-token TMA tiles (the most a
      page of 64 holds) in 3 stages (86 KB, two programs an SM; the buffers of session 8's "5
      stages"): 733.8 us against 740.9 at 4 stages, 828.5 at 2 and 1136.7 at 5 (one program an
      SM), in session 9's sweep; 742-760 for the gathered 128-token tiles in 3 stages (session 6).
      On a Hopper GPU with Triton 3.6 (`pair_groups`, `pairs_fit`), Q = 2 instead reads two
      adjacent groups as one 256-column tile through row_major_ws.py, one warpgroup for both
      groups' 64 rows, 64-token tiles in 3 buffers: 645-663 us against 708-734 for these tiles in
      alternating runs in one call (4 buffers 635-708; session 14).
    - GTA with more rows: the row-major kernel, 128-token tiles at 4 warps, 2 stages (half the
      loop trips of 64-token tiles for the same bytes: 657 against 724 us at Q = 1).
    - GLA-2 on a Hopper GPU: the warp-specialized Gluon kernel (row_major_ws.py), one warpgroup
      per 64 rows, 64-token tiles in 3 buffers. In alternating runs in one call (DEC-A, 4.23
      TB/s): Q = 2 535-538 us against 592 for the Triton TMA kernel below, Q = 1 375-380 against
      388 (session 13); with conditional rescaling (session 15) 448-514 / 328-336 at DEC-A.
      Fewer buffers where the query rows and tiles would not fit (`ws_buffers`). Elsewhere (no
      Hopper, another Triton than 3.6: `gluon_ready`; fewer than 33 rows; float32 caches with
      these tiles) the Triton kernels:
    - GLA-2 (Dc 256), up to 64 rows (Q = 1): 32-token tiles at 4 warps (514 us gathered; 8
      warps took 778-1109). The (rows, 256) accumulator and the 256-wide tile fill a program's
      registers, so narrow tiles and fewer threads with more registers each win. Loaded as TMA
      rectangles in 3 stages (103 KB, two programs an SM): 398.2 us against 470.6 at 2 stages and
      455.8 at 4 (one program an SM) in session 9's sweep.
    - GLA-2 at 128 rows (Q = 2): 4 warps cannot hold that accumulator (3257 us); 64-token tiles
      at 8 warps stay best, as TMA rectangles in 3 stages (205 KB, one program an SM): 559.8 us
      against 665.8 at 2 stages (session 9). Up to Dc 256 a group's 128 rows fit one program;
      split over two programs of 64 rows (adjacent, so the second reads the tiles from L2) they
      took 955-980 us (gathered, session 5).
    - MLA (Dc 512, 128 heads on one latent): a (128, 512) float32 accumulator alone is a whole
      SM's register file (255 registers and 3 KB of spills a thread), so 64 rows a program at 8
      warps, the two programs of a group adjacent. The latent is read as two TMA boxes of 256
      columns (row_major.py): 64-token tiles in 2 stages (229 KB of shared memory, one program an
      SM) took 823 us at Q = 1 and 1557 at Q = 2 against 892 / 1775 for 32-token tiles in 3
      stages and 1095 / 2166 gathered (session 10's sweep, after the score products became
      separate dots, `row_major._tile_step`). On a Hopper GPU with Triton 3.6, MLA's 64-row
      blocks take the Gluon kernel that splits the value columns between two warpgroups
      (wide_latent_ws.py): 32-token tiles in 4 buffers (230 KB) took 713-722 us at Q = 1 and
      1352-1383 at Q = 2 in the same run as 820-825 and 1555-1560 for these Triton tiles, 3
      buffers 728-730 / 1370-1385; 64-token tiles in 2 buffers (one P buffer, 230 KB) 663-706 /
      1223-1273 in a later call, against 705-710 / 1341-1361 for 32 in 4 (session 14). With each
      tile box refilled as soon as its readers are done and conditional rescaling (session 16):
      506-590 / 1023-1115; 32-token tiles in 4 buffers with the same, no spills: 715-754 /
      1374-1445 against 545-585 / 1058-1173 in alternating runs (session 18).
    """
    if device.type != "cuda":
        return INTERPRETER_CONFIG
    if dc <= 128 and rows <= 16:
        return Config(64, 4, 2, 128, GPU_MIN_PROGRAMS, keys_major=True, tma=True)
    if dc <= 128 and rows <= 32:
        return Config(
            64, 4, 3, 128, GPU_MIN_PROGRAMS, keys_major=True, tma=True, pair_groups=gluon_ready(device)
        )
    if dc <= 128:
        return Config(128, 4, 2, 128, GPU_MIN_PROGRAMS)
    if dc <= 256:
        if rows > 32 and gluon_ready(device):
            return Config(
                64, 4 if rows <= 64 else 8, 3, 128, GPU_MIN_PROGRAMS, tma=True, warp_specialized=True
            )
        if rows <= 64:
            return Config(32, 4, 3, 128, GPU_MIN_PROGRAMS, tma=True)
        return Config(64, 8, 3, 128, GPU_MIN_PROGRAMS, tma=True)
    if dc == 2 * TMA_MAX_BOX and rows > 32 and gluon_ready(device):
        return Config(64, 4, 2, 64, GPU_MIN_PROGRAMS, tma=True, warp_specialized=True)
    return Config(64, 8, 2, 64, GPU_MIN_PROGRAMS, tma=True)


@triton.jit
def paged_decode_combine_kernel(
    o_part, lse_part, o, n_splits, DC: tl.constexpr, BSP: tl.constexpr, BC: tl.constexpr
):
    # One output row (b, q, h): o = sum_s 2^lse_s o_s / sum_s 2^lse_s, shifted by the max for range.
    i_row = tl.program_id(0).to(tl.int64)
    o_sp = tl.arange(0, BSP)
    o_c = tl.arange(0, BC)
    m_c = o_c < DC
    b_lse = tl.load(lse_part + i_row * n_splits + o_sp, mask=o_sp < n_splits, other=float("-inf"))
    b_max = tl.max(b_lse, 0)
    # Split 0 holds key 0, visible to every row, so b_max is finite; kept safe all the same.
    b_max = tl.where(b_max == float("-inf"), 0.0, b_max)
    b_w = tl.exp2(b_lse - b_max)
    # One split's row at a time: S rows of Dc at once would not fit registers when S is large
    # (few sequences); the S log-sum-exps do.
    b_o = tl.zeros([BC], dtype=tl.float32)
    for i_sp in range(0, n_splits):
        w = tl.exp2(tl.load(lse_part + i_row * n_splits + i_sp) - b_max)
        b_o += w * tl.load(o_part + (i_row * n_splits + i_sp) * DC + o_c, mask=m_c, other=0.0)
    p_o = o + i_row * DC + o_c
    tl.store(p_o, (b_o / tl.sum(b_w, 0)).to(p_o.dtype.element_ty), mask=m_c)


def paged_decode_fwd(
    q_a: torch.Tensor,
    q_r: torch.Tensor,
    cache: torch.Tensor,
    rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float,
    ka: int,
    *,
    splits: int | None = None,
    cfg: Config | None = None,
) -> torch.Tensor:
    """Launch over checked arguments: q_a (B, Q, H, >= Ka) and q_r (B, Q, H, Dr) with unit stride in
    the last dim and (B, Q) flattenable; cache (num_pages, page_size, G, Dc), rope (num_pages,
    page_size, Dr) contiguous. Returns o (B, Q, H, Dc) in q_a's dtype.

    splits: the number S of key ranges per sequence; None picks enough to reach the config's
    min_programs with >= 2 tiles a range. Ranges past a sequence's end are empty (no NaN, no effect).
    cfg: tiles other than `config_for`'s (benchmarks/decode_attention.py --sweep).
    """
    b, nq, h, _ = q_a.shape
    _, page_size, g, dc = cache.shape
    dr = rope.shape[2]
    rows = nq * (h // g)
    cfg = cfg or config_for(cache.device, dc, rows)
    br = max(16, triton.next_power_of_2(dr))
    # gp groups a tile: a program serves gp groups' rows from tiles of gp x Dc columns.
    gp = 2 if pairs_fit(cfg, cache, rope, ka, rows, br) else 1
    bm = min(triton.next_power_of_2(rows * gp), cfg.max_rows)
    if cache.device.type == "cuda":
        bm = max(16, bm)  # tl.dot on a GPU needs M >= 16
    row_blocks = triton.cdiv(rows * gp, bm)
    programs = b * (g // gp) * row_blocks
    capacity = block_table.shape[1] * page_size  # >= every seq_len, without reading seq_lens
    if splits is None:
        n_splits = min(triton.cdiv(cfg.min_programs, programs), triton.cdiv(capacity, 2 * cfg.bs))
        n_splits = max(1, n_splits)
    elif isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive int or None, got {splits!r}")
    else:
        n_splits = splits
    chunk = triton.cdiv(triton.cdiv(capacity, n_splits), cfg.bs) * cfg.bs
    o = torch.empty((b, nq, h, dc), dtype=q_a.dtype, device=q_a.device)
    if n_splits > 1:
        o_part = torch.empty((b, nq, h, n_splits, dc), dtype=torch.float32, device=q_a.device)
        lse_part = torch.empty((b, nq, h, n_splits), dtype=torch.float32, device=q_a.device)
    else:
        o_part, lse_part = o, o  # lse is never touched without a split
    bc = max(16, triton.next_power_of_2(dc))
    if cfg.keys_major:
        ba = max(16, triton.next_power_of_2(ka))
        bb = 0 if dc == ka else max(16, triton.next_power_of_2(dc - ka))
        kernels, widths = (
            (paged_decode_keys_major_kernel, paged_decode_keys_major_tma_kernel),
            dict(BA=ba, BB=bb),
        )
        blocks = (ba, bb or ba)  # the kernel reads desc_cb only where BB > 0
    else:
        bc_row, bd = row_major_blocks(dc)
        kernels, widths = (paged_decode_kernel, paged_decode_tma_kernel), dict(BC=bc_row, BD=bd)
        blocks = (bc_row, bd or bc_row)  # the kernel reads desc_d only where BD > 0
    tma = cfg.tma and tma_fits(cache, rope, cfg.bs, (*blocks, br))
    # Stages are the Triton kernels' pipelining depth, and the Gluon kernel's tile buffers.
    launch = dict(num_warps=cfg.warps, PRECISION="ieee" if q_a.dtype == torch.float32 else "tf32")
    # Tile buffers row_major_ws.py can hold beside the program's query rows (wide_latent_ws.py's
    # configs are sized for it).
    ws_bm, ws_width = (64, 2 * dc) if gp == 2 else (bm, blocks[0])
    ws_ns = ws_buffers(cfg, ws_bm, ws_width, br, cache.element_size())
    if gp == 2:  # two groups' columns as one tile (row_major_ws.py)
        kernel, operands = _ws_kernel(cache, rope, cfg, 2 * dc, br)
        widths, launch = dict(BC=2 * dc, GP=2), dict(num_warps=4, NS=ws_ns)
    elif tma and not cfg.keys_major and ws_fits(cfg, cache, bm, dc) and (dc > blocks[0] or ws_ns >= 2):
        # num_warps: the default partition, the first warpgroup (row_major_ws.py, wide_latent_ws.py).
        kernel, operands = _ws_kernel(cache, rope, cfg, blocks[0], br)
        widths, launch = dict(BC=blocks[0]), dict(num_warps=4, NS=cfg.stages)
        if dc > blocks[0]:
            launch["maxnreg"] = WIDE_WS_LAUNCH_REGISTERS
        else:
            widths["GP"] = 1
            launch["NS"] = ws_ns
    elif tma:
        kernel, operands = kernels[1], _tma_descriptors(cache, rope, cfg.bs, blocks, br)
        launch["num_stages"] = cfg.stages
    else:
        kernel, operands = kernels[0], (cache, rope)
        launch["num_stages"] = cfg.stages
    kernel[(programs, n_splits)](
        q_a,
        q_r,
        *operands,
        o_part,
        lse_part,
        block_table,
        seq_lens,
        scale,
        q_a.stride(1),
        q_a.stride(2),
        q_r.stride(1),
        q_r.stride(2),
        block_table.shape[1],
        chunk,
        n_splits,
        Q=nq,
        H=h,
        G=g,
        KA=ka,
        DC=dc,
        DR=dr,
        PS=page_size,
        BM=bm,
        BS=cfg.bs,
        **widths,
        BR=br,
        SPLIT=n_splits > 1,
        **launch,
    )
    if n_splits > 1:
        paged_decode_combine_kernel[(b * nq * h,)](
            o_part, lse_part, o, n_splits, DC=dc, BSP=triton.next_power_of_2(n_splits), BC=bc, num_warps=4
        )
    return o


# A tensor map's box is at most 256 elements along each dimension.
TMA_MAX_BOX = 256


def row_major_blocks(dc: int) -> tuple[int, int]:
    """The row-major kernels' column blocks (BC, BD) for a cache of width Dc: powers of two of at
    most a TMA box's side, BD = 0 where one block holds the row (MLA's 512 columns: 256 and 256)."""
    bc = min(max(16, triton.next_power_of_2(dc)), TMA_MAX_BOX)
    return bc, 0 if dc <= bc else max(16, triton.next_power_of_2(dc - bc))


def tma_fits(cache: torch.Tensor, rope: torch.Tensor, bs: int, widths: tuple[int, ...]) -> bool:
    """Whether the TMA kernels can load this cache in tiles of `bs` tokens and blocks of `widths`
    columns: every tile inside one page, boxes of at most 256 elements a side, rows and bases 16-byte
    aligned (the copy engine's rule for a tensor map)."""
    row_bytes = (math.prod(cache.shape[2:]) * cache.element_size(), rope.shape[2] * rope.element_size())
    aligned = cache.data_ptr() % 16 == 0 and rope.data_ptr() % 16 == 0 and all(n % 16 == 0 for n in row_bytes)
    boxes = max(bs, *widths) <= TMA_MAX_BOX
    return cache.shape[1] % bs == 0 and aligned and boxes


def ws_fits(cfg: Config, cache: torch.Tensor, bm: int, dc: int) -> bool:
    """Whether `cfg` asks for a warp-specialized Gluon kernel and this launch is one's case: a
    Hopper GPU with Triton 3.6's Gluon (`_GLUON_API`), a 16-bit cache, and either
    - row_major_ws.py: at most 256 columns (one block), blocks of 64 or 128 rows with one
      warpgroup (4 warps) per 64 rows; or
    - wide_latent_ws.py: exactly two blocks of 256 columns (MLA's 512), blocks of 64 rows, 4 warps
      (the launch's; its two warpgroups split the value columns), tiles of 32 or 64 tokens (the
      swizzles of its P buffers)."""
    if not (
        cfg.warp_specialized
        and cache.device.type == "cuda"
        and cache.dtype in (torch.bfloat16, torch.float16)
    ):
        return False
    one_block = dc <= TMA_MAX_BOX and bm in (64, 128) and cfg.warps == bm // 16
    two_blocks = dc == 2 * TMA_MAX_BOX and bm == 64 and cfg.warps == 4 and cfg.bs in (32, 64)
    if not (one_block or two_blocks):
        return False
    return gluon_ready(cache.device)


# Shared memory a Hopper CTA may hold (227 KB), and what row_major_ws.py takes beside its tiles and
# queries (barriers, the warpgroups' reduction scratch), with room to spare.
HOPPER_SHARED_BYTES = 232448
WS_OTHER_SHARED_BYTES = 1024


def ws_buffers(cfg: Config, bm: int, width: int, br: int, itemsize: int) -> int:
    """Tile buffers for row_major_ws.py: the config's stages, fewer where the program's query rows
    (bm x (width + br)) and that many tiles of bs x (width + br) would pass a Hopper CTA's shared
    memory. GLA's Dc 256 at 128 rows takes 3 buffers with RoPE keys of 64 (200 KB) and 2 with
    RoPE keys of 128 (3 would need 240 KB). Under 2 the kernel cannot run: the next tile's score
    product is in flight beside this tile's value product."""
    row = (width + br) * itemsize
    room = HOPPER_SHARED_BYTES - WS_OTHER_SHARED_BYTES - bm * row
    return max(0, min(cfg.stages, room // (cfg.bs * row)))


def pairs_fit(cfg: Config, cache: torch.Tensor, rope: torch.Tensor, ka: int, rows: int, br: int) -> bool:
    """Whether to serve two adjacent groups a program from tiles of both groups' 2 x Dc columns
    (`Config.pair_groups`, row_major_ws.py with GP = 2): GTA's Dc = 128 with Ka = 64 (each group's
    key columns one 128-byte swizzle row of the tile, so the score products can skip the other
    group's half), an even number of groups, both groups' rows in one warpgroup's 64, and the
    Gluon kernel's case (`ws_fits`) for a 256-column tile read as TMA rectangles."""
    g, dc = cache.shape[2], cache.shape[3]
    if not (cfg.pair_groups and g % 2 == 0 and dc == 2 * ka == 128 and 32 < 2 * rows <= 64):
        return False
    as_ws = replace(cfg, warps=4, warp_specialized=True)  # one warpgroup for both groups' rows
    return (
        tma_fits(cache, rope, cfg.bs, (2 * dc, br))
        and ws_fits(as_ws, cache, 64, 2 * dc)
        and ws_buffers(cfg, 64, 2 * dc, br, cache.element_size()) >= 2
    )


# The Gluon kernels (row_major_ws.py, wide_latent_ws.py) are written against Triton 3.6's Gluon API,
# the GPU machine's. Gluon is experimental and moves between releases (3.9 renamed its CTA barrier
# and the TMA copies), so the launcher takes them on 3.6 only and the Triton kernels elsewhere.
_GLUON_API = ["3", "6"]
# wide_latent_ws.py launches at 168 registers a thread and hands them out by warpgroup (setmaxnreg):
# warpgroup 1 takes 192, the copy warp's group 24, warpgroup 0 (the default partition) 256.
WIDE_WS_LAUNCH_REGISTERS = 168


@functools.cache
def gluon_ready(device: torch.device) -> bool:
    """A Hopper GPU and the Triton whose Gluon the warp-specialized kernels are written for."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    if torch.cuda.get_device_capability(device)[0] != 9:
        return False
    if triton.__version__.split(".")[:2] != _GLUON_API:
        return False
    try:
        from triton.experimental import gluon  # noqa: F401
    except ImportError:
        return False
    return True


def _ws_kernel(cache: torch.Tensor, rope: torch.Tensor, cfg: Config, bc: int, br: int) -> tuple:
    """The warp-specialized Gluon kernel for the cache's width (one block of bc columns, or two)
    and its tensor maps: the cache as (rows, G x Dc) in (bs, bc) blocks, the RoPE keys as
    (rows, Dr) in (bs, br) blocks, each with the shared-memory layout its tiles land in."""
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    from redpajama.kernels.decode.row_major_ws import paged_decode_ws_kernel
    from redpajama.kernels.decode.wide_latent_ws import paged_decode_wide_ws_kernel

    num_pages, page_size, g, dc = cache.shape
    kernel = paged_decode_ws_kernel if dc <= bc else paged_decode_wide_ws_kernel
    gl_dtype = gl.bfloat16 if cache.dtype == torch.bfloat16 else gl.float16
    maps = []
    for t, width in (
        (cache.view(num_pages * page_size, g * dc), bc),
        (rope.view(num_pages * page_size, -1), br),
    ):
        layout = gl.NVMMASharedLayout.get_default_for([cfg.bs, width], gl_dtype)
        maps.append(TensorDescriptor.from_tensor(t, [cfg.bs, width], layout))
    return kernel, tuple(maps)


def _tma_descriptors(
    cache: torch.Tensor, rope: torch.Tensor, bs: int, blocks: tuple[int, ...], br: int
) -> tuple:
    """Tensor maps over the token rows: the cache as (rows, G x Dc) in (bs, w) blocks, a map for
    each w of `blocks` (one map serves equal widths: it is built per call, on the host), then the
    RoPE keys as (rows, Dr) in (bs, br) blocks."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    num_pages, page_size, g, dc = cache.shape
    c2 = cache.view(num_pages * page_size, g * dc)
    r2 = rope.view(num_pages * page_size, rope.shape[2])
    maps = {w: TensorDescriptor.from_tensor(c2, [bs, w]) for w in dict.fromkeys(blocks)}
    return (
        *(maps[w] for w in blocks),
        TensorDescriptor.from_tensor(r2, [bs, br]),
    )


@torch.library.custom_op("redpajama::paged_decode", mutates_args=())
def paged_decode_op(
    q_a: torch.Tensor,
    q_r: torch.Tensor,
    cache: torch.Tensor,
    rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float,
    ka: int,
) -> torch.Tensor:
    return paged_decode_fwd(q_a, q_r, cache, rope, block_table, seq_lens, scale, ka)


@paged_decode_op.register_fake
def _(q_a, q_r, cache, rope, block_table, seq_lens, scale, ka):
    return q_a.new_empty((*q_a.shape[:3], cache.shape[3]))


def _check_tensor(name: str, value, dim: int, device: torch.device, dtypes) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(value.shape)}")
    if value.dtype not in dtypes:
        raise TypeError(f"{name} must have a dtype in {[str(t) for t in dtypes]}, got {value.dtype}")
    if value.device != device:
        raise ValueError(f"{name} is on {value.device} but the query is on {device}")


def check_arguments(queries: dict, cache: dict, block_table, seq_lens) -> None:
    """Raise TypeError/ValueError naming the offending numbers. queries: name -> (B, Q, H, dim)
    tensors; cache: name -> the per-group cache (num_pages, page_size, G, Dc) first, then the shared
    RoPE key (num_pages, page_size, Dr). Shapes, dtypes and devices only (no device sync)."""
    (q_name, q), *_ = queries.items()
    (c_name, c), (r_name, r) = cache.items()
    for name, value in queries.items():
        _check_tensor(name, value, 4, q.device, DTYPES)
        if value.shape[:3] != q.shape[:3]:
            raise ValueError(f"{name} {tuple(value.shape)} and {q_name} {tuple(q.shape)} differ in (B, Q, H)")
    _check_tensor(c_name, c, 4, q.device, DTYPES)
    _check_tensor(r_name, r, 3, q.device, DTYPES)
    for name, value in (*queries.items(), (c_name, c), (r_name, r)):
        if value.dtype != q.dtype:
            raise TypeError(f"{name} is {value.dtype} but {q_name} is {q.dtype}: one dtype for all")
        if not 0 < value.shape[-1] <= MAX_DIM:
            raise ValueError(f"{name} last dim must be in 1..{MAX_DIM}, got {value.shape[-1]}")
    for name, value in ((c_name, c), (r_name, r)):
        if not value.is_contiguous():
            raise ValueError(f"{name} must be contiguous (a cache is never copied)")
    b, nq, h, _ = q.shape
    num_pages, page_size, g, _ = c.shape
    if r.shape[:2] != (num_pages, page_size):
        raise ValueError(
            f"{r_name} {tuple(r.shape)} and {c_name} {tuple(c.shape)} differ in (num_pages, page_size)"
        )
    if b == 0 or nq == 0 or num_pages == 0 or page_size == 0:
        raise ValueError(f"empty input: B={b}, Q={nq}, num_pages={num_pages}, page_size={page_size}")
    if g == 0 or h % g != 0:
        raise ValueError(f"query heads H={h} must be a multiple of the cache groups G={g}")
    _check_tensor("block_table", block_table, 2, q.device, (torch.int32,))
    _check_tensor("seq_lens", seq_lens, 1, q.device, (torch.int32,))
    if block_table.shape[0] != b or seq_lens.shape[0] != b:
        raise ValueError(
            f"block_table {tuple(block_table.shape)} and seq_lens {tuple(seq_lens.shape)} must have B={b} rows"
        )
    if not block_table.is_contiguous() or not seq_lens.is_contiguous():
        raise ValueError("block_table and seq_lens must be contiguous")


def check_values(block_table: torch.Tensor, seq_lens: torch.Tensor, nq: int, num_pages: int, page_size: int):
    """Raise ValueError unless Q <= seq_lens <= max_pages * page_size and every page a sequence uses
    is in 0..num_pages-1 (entries past a sequence's pages are never read: any value). The checks
    run on the device and come back together: one sync."""
    cap = block_table.shape[1] * page_size
    used = (
        torch.arange(block_table.shape[1], device=block_table.device)[None, :] * page_size < seq_lens[:, None]
    )
    bad_rows = (((block_table < 0) | (block_table >= num_pages)) & used).any(dim=1)
    lo, hi, any_bad, first_bad = torch.stack(
        [seq_lens.min().long(), seq_lens.max().long(), bad_rows.any().long(), bad_rows.long().argmax()]
    ).tolist()
    if lo < nq or hi > cap:
        raise ValueError(f"seq_lens must be in Q={nq}..max_pages*page_size={cap}, got {lo}..{hi}")
    if any_bad:
        raise ValueError(
            f"block_table row {first_bad} names pages outside 0..{num_pages - 1} among its used pages"
        )


def _check_values_now() -> bool:
    # No sync while compiling or capturing a CUDA graph (decode steps are usually captured).
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def gta_operands(q: torch.Tensor, scale: float | None = None):
    """GTA on the shared kernel: (q_a, q_r, scale, Ka) for `paged_decode_fwd` / `paged_decode_op`.
    The first D/2 columns of q score against the tied state kv, the rotated last D/2 against k_rope;
    scale 1/sqrt(D) by default."""
    d = q.shape[3]
    q = q.contiguous()
    return q, q[..., d // 2 :], 1.0 / math.sqrt(d) if scale is None else float(scale), d // 2


def gla_operands(q_latent: torch.Tensor, q_rope: torch.Tensor, scale: float | None = None):
    """GLA on the shared kernel: (q_a, q_r, scale, Ka); Ka is the whole latent, scale 1/sqrt(Dl + Dr)
    by default."""
    dl, dr = q_latent.shape[3], q_rope.shape[3]
    scale = 1.0 / math.sqrt(dl + dr) if scale is None else float(scale)
    return q_latent.contiguous(), q_rope.contiguous(), scale, dl


def gta_decode(
    q: torch.Tensor,
    kv: torch.Tensor,
    k_rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Grouped-tied attention (GTA) decode over a paged cache.

    q: (B, Q, H, D), D even, the last D/2 columns already rotated (RoPE); kv: (num_pages, page_size,
    G, D) the tied key/value state of each group; k_rope: (num_pages, page_size, D/2) the rotated
    RoPE key shared by all heads; block_table int32 (B, max_pages); seq_lens int32 (B,) with
    Q <= seq_lens <= max_pages * page_size. Head h reads group h // (H // G).
    scores = (q[:D/2] . kv[:D/2] + q[D/2:] . k_rope) * scale (scale 1/sqrt(D) by default, as in the
    training layer), o = softmax(scores) @ kv over keys 0 .. seq_len - Q + i for query i.
    One dtype of float16/bfloat16/float32. Returns o (B, Q, H, D) in q's dtype. The values are
    checked (one sync) outside torch.compile and CUDA graph capture. Inference only (no autograd).
    """
    check_arguments(dict(q=q), dict(kv=kv, k_rope=k_rope), block_table, seq_lens)
    d = q.shape[3]
    if d % 2 or kv.shape[3] != d or k_rope.shape[2] != d // 2:
        raise ValueError(
            f"GTA needs an even D with kv (..., G, D) and k_rope (..., D/2): got q D={d}, "
            f"kv {tuple(kv.shape)}, k_rope {tuple(k_rope.shape)}"
        )
    if _check_values_now():
        check_values(block_table, seq_lens, q.shape[1], kv.shape[0], kv.shape[1])
    q_a, q_r, scale, ka = gta_operands(q, scale)
    return paged_decode_op(q_a, q_r, kv, k_rope, block_table, seq_lens, scale, ka)


def gla_decode(
    q_latent: torch.Tensor,
    q_rope: torch.Tensor,
    latent: torch.Tensor,
    k_rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Grouped-latent attention (GLA) decode over a paged cache, with absorbed queries.

    q_latent: (B, Q, H, Dl) the queries already multiplied by the key up-projection (absorbed into
    the latent space); q_rope: (B, Q, H, Dr) rotated; latent: (num_pages, page_size, G, Dl) the
    latent state of each group; k_rope: (num_pages, page_size, Dr) the rotated RoPE key shared by all
    heads; block_table int32 (B, max_pages); seq_lens int32 (B,), Q <= seq_lens <= max_pages *
    page_size. Head h of group g = h // (H // G):
    scores = (q_latent[h] . latent[g] + q_rope[h] . k_rope) * scale, o[h] = softmax(scores) @ latent[g]
    over keys 0 .. seq_len - Q + i for query i: the output stays in the latent space, (B, Q, H, Dl);
    the value up-projection is applied outside (MLA/GLA absorption). scale defaults to
    1/sqrt(Dl + Dr): pass the model's (usually 1/sqrt of the un-absorbed query-key head dim).
    One dtype of float16/bfloat16/float32. Returns o in q_latent's dtype; values checked (one sync)
    outside torch.compile and CUDA graph capture. Inference only (no autograd).
    """
    check_arguments(
        dict(q_latent=q_latent, q_rope=q_rope), dict(latent=latent, k_rope=k_rope), block_table, seq_lens
    )
    dl, dr = q_latent.shape[3], q_rope.shape[3]
    if latent.shape[3] != dl or k_rope.shape[2] != dr:
        raise ValueError(
            f"latent {tuple(latent.shape)} must end in Dl={dl} and k_rope {tuple(k_rope.shape)} in Dr={dr}"
        )
    if _check_values_now():
        check_values(block_table, seq_lens, q_latent.shape[1], latent.shape[0], latent.shape[1])
    q_a, q_r, scale, ka = gla_operands(q_latent, q_rope, scale)
    return paged_decode_op(q_a, q_r, latent, k_rope, block_table, seq_lens, scale, ka)
