"""The paged decode kernel for latents of two TMA boxes (MLA: 512 columns + 64 RoPE) on Hopper, in
Gluon, with its work split between warpgroups in FlashMLA's way.

Why a second Gluon kernel: at MLA's width a (64, 512) float32 accumulator is 256 registers a thread
for one warpgroup, so `row_major_ws.py`'s one-warpgroup-per-64-rows plan does not fit, and the
Triton kernel (`row_major.paged_decode_tma_kernel`, two column blocks) splits each tile's keys
over its two warpgroups, which then exchange row maxima, sums and probabilities through shared
memory at a barrier every tile (50-54% of roofline at DEC-A). Here each warpgroup owns half the
value columns of the same 64 rows instead:
- A copy partition (one warp) loads each tile's latent as two 256-column boxes plus its RoPE keys
  into slot t % NS. Each box has its own `ready` and `empty` barriers and is refilled as soon as
  its own readers are done with it: the RoPE keys once warpgroup 0's score product is, the second
  latent box once warpgroup 1's value product is too, the first once warpgroup 0's value product is.
- Warpgroup 0 computes the scores over all 576 columns, the online softmax, and the value product
  of latent columns [0, 256), as two accumulators of 128 columns. Each step issues tile t's value
  product over the first 128, then tile t + 1's score product box by box (RoPE, second half, first
  half: the order the boxes land in), then tile t's other 128 columns, which run during tile
  t + 1's softmax (under Nsight Compute the tensor pipe 62.0% -> 63.9% active at Q = 2, one
  launch 979 -> 955 us). It hands each tile's probabilities P (16-bit) and rescale factors to
  warpgroup 1 through shared memory (`p_ready` / `p_free` barriers; two buffers at 32-token tiles,
  one at 64, where a second would not fit the CTA's 227 KB). Being first to see a tile, it also
  zeroes the stale rows of a partial tile in both halves.
- Warpgroup 1 computes the value product of latent columns [256, 512) with that P.
- Both rescale their accumulators only on tiles where a row's reference maximum moved
  (FlashAttention-4's conditional rescaling, `row_major_ws.RESCALE_SLACK`): warpgroup 0 when one
  of its rows moved, warpgroup 1 when a factor it is handed is below 1. In alternating runs at
  DEC-A: Q = 2 1023-1115 us against 1110-1260 rescaling every tile (faster in 6 of 6 rounds),
  Q = 1 from 4% slower to 10% faster.
So no barrier joins the warpgroups inside the loop except P's hand-over.

Why boxes and this order: at 64-token tiles two slots fit beside the query (216 KB), and with one
barrier a slot the next tile's copy could start only once both warpgroups were done with the whole
tile, which warpgroup 0 needs one step later: each step waited out a 72 KB copy. With the box
barriers the RoPE keys and the second latent half refill a step ahead, and the first latent half
(freed once its second value half is done, during the next softmax) while the step's other
products are still queued. At DEC-A (B 128, 8K context), alternating runs in one call: Q = 1
506-569 us against 658-703 with one barrier a slot, Q = 2 1127-1160 against 1216-1236; the
one-barrier kernel with every tile resident in L2 took 520 us at Q = 1, so the copies' waits were
its gap (docs/benchmarks.md). Earlier: 32-token tiles in 4 buffers took 713-730 us at Q = 1 and
1352-1385 at Q = 2, against 820-825 and 1555-1560 for the Triton kernel in the same run.

Same arguments, masking, splits and outputs as `row_major_ws.paged_decode_ws_kernel`, for caches
whose group width Dc is exactly two boxes of BC columns, 64 rows a program, 16-bit caches, tiles
inside one page. Written against Triton 3.6's Gluon API (paged.py's `gluon_ready`); Gluon has no
interpreter, so it is tested on a Hopper GPU (tests/kernels/test_decode.py).
"""

from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from redpajama.kernels.decode.row_major_ws import (
    RESCALE_SLACK,
    _key_range,
    _program_coords,
    _query_rows,
    _softmax,
    _store_rows,
    _tile_row,
    _zero_rows,
)


@gluon.jit
def _zero_tile_past_end(c0_buf, c1_buf, k0, end, BS: gl.constexpr):
    """Both halves of a partial tile, then the fence that hands the writes to the async proxy the
    MMAs read through, and the warpgroup's barrier that holds its warps until all are in."""
    _zero_rows(c0_buf, k0, end, BS)
    _zero_rows(c1_buf, k0, end, BS)
    fence_async_shared()
    gl.thread_barrier()


@gluon.jit
def _issue_scores(qa0, qa1, qr, c0_smem, c1_smem, r_smem, ready_c0, ready_c1, ready_r, slot, ph, k0, end, s):
    """Issue one tile's score product (not waited on) box by box as each lands, in the order the
    copy partition refills them (RoPE keys, second latent half, first); a partial tile's stale
    rows are zeroed first, once both latent halves are in."""
    BS: gl.constexpr = c0_smem.shape[1]
    if k0 + BS > end:
        mbarrier.wait(ready_c1.index(slot), ph)
        mbarrier.wait(ready_c0.index(slot), ph)
        _zero_tile_past_end(c0_smem.index(slot), c1_smem.index(slot), k0, end, BS)
    mbarrier.wait(ready_r.index(slot), ph)
    s = warpgroup_mma(qr, r_smem.index(slot).permute((1, 0)), s, use_acc=False, is_async=True)
    mbarrier.wait(ready_c1.index(slot), ph)
    s = warpgroup_mma(qa1, c1_smem.index(slot).permute((1, 0)), s, is_async=True)
    mbarrier.wait(ready_c0.index(slot), ph)
    return warpgroup_mma(qa0, c0_smem.index(slot).permute((1, 0)), s, is_async=True)


@gluon.jit
def _rescale_halves(acc_a, acc_b, alpha, rescale, o_layout: gl.constexpr):
    """Both 128-column accumulators by the rows' factors, where some row's reference moved."""
    if rescale > 0:
        a_o = gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))
        acc_a = acc_a * a_o[:, None]
        acc_b = acc_b * a_o[:, None]
    return acc_a, acc_b


@gluon.jit
def _copy_partition(
    desc_c,
    desc_r,
    c0_smem,
    c1_smem,
    r_smem,
    ready_c0,
    ready_c1,
    ready_r,
    empty_c0,
    empty_c1,
    empty_r,
    bt,
    start,
    n_tiles,
    col,
    PS: gl.constexpr,
):
    """The copy partition (one warp): tile t's RoPE keys, second latent box and first latent box
    into slot t % NS, each once that box's previous tile is released (in the order they free)."""
    NS: gl.constexpr = c0_smem.shape[0]
    BS: gl.constexpr = c0_smem.shape[1]
    BH: gl.constexpr = c0_smem.shape[2]
    for t in range(n_tiles):
        slot = t % NS
        ph = ((t // NS) & 1) ^ 1
        row = _tile_row(bt, start, t, n_tiles, PS, BS)
        mbarrier.wait(empty_r.index(slot), ph, pred=t >= NS)
        mbarrier.expect(ready_r.index(slot), desc_r.block_type.nbytes)
        tma.async_copy_global_to_shared(desc_r, [row, 0], ready_r.index(slot), r_smem.index(slot))
        mbarrier.wait(empty_c1.index(slot), ph, pred=t >= NS)
        mbarrier.expect(ready_c1.index(slot), desc_c.block_type.nbytes)
        tma.async_copy_global_to_shared(desc_c, [row, col + BH], ready_c1.index(slot), c1_smem.index(slot))
        mbarrier.wait(empty_c0.index(slot), ph, pred=t >= NS)
        mbarrier.expect(ready_c0.index(slot), desc_c.block_type.nbytes)
        tma.async_copy_global_to_shared(desc_c, [row, col], ready_c0.index(slot), c0_smem.index(slot))


@gluon.jit
def _scores_partition(
    qa0,
    qa1,
    qr,
    c0_smem,
    c1_smem,
    r_smem,
    p_smem,
    alpha_smem,
    l_smem,
    ready_c0,
    ready_c1,
    ready_r,
    empty_c0,
    empty_c1,
    empty_r,
    p_ready,
    p_free,
    done,
    o,
    lse,
    start,
    end,
    n_tiles,
    mask_at,
    seq_len,
    qk_scale,
    i_b,
    i_g,
    i_m,
    i_sp,
    n_splits,
    Q: gl.constexpr,
    H: gl.constexpr,
    G: gl.constexpr,
    DC: gl.constexpr,
    SPLIT: gl.constexpr,
):
    """Warpgroup 0: scores, online softmax, P and its rescale factors for warpgroup 1, and the
    value product of the first half of the columns; then its half of the output and, at the end,
    the row sums warpgroup 1 normalizes by (`l_smem`, `done`)."""
    HG: gl.constexpr = H // G
    NS: gl.constexpr = c0_smem.shape[0]
    PB: gl.constexpr = p_smem.shape[0]
    BS: gl.constexpr = c0_smem.shape[1]
    BH: gl.constexpr = c0_smem.shape[2]
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BS, 16]
    )
    BQ: gl.constexpr = BH // 2
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BQ, 16]
    )
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    dtype: gl.constexpr = c0_smem.dtype
    o_ms = i_m * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
    pos = seq_len - Q + o_ms // HG
    m = gl.full([64], float("-inf"), gl.float32, layout=gl.SliceLayout(1, s_layout))
    l_sum = gl.zeros([64], gl.float32, layout=gl.SliceLayout(1, s_layout))
    acc_a = gl.zeros([64, BQ], gl.float32, layout=o_layout)
    acc_b = gl.zeros([64, BQ], gl.float32, layout=o_layout)
    s = gl.zeros([64, BS], gl.float32, layout=s_layout)
    if n_tiles > 0:
        s = _issue_scores(
            qa0, qa1, qr, c0_smem, c1_smem, r_smem, ready_c0, ready_c1, ready_r, 0, 0, start, end, s
        )
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        mbarrier.arrive(empty_r.index(0))
        mbarrier.arrive(empty_c1.index(0))
        m, l_sum, p, alpha, moved = _softmax(
            s, m, l_sum, start, pos, mask_at, end, qk_scale, s_layout, BS, RESCALE_SLACK
        )
        rescale = gl.max(moved.to(gl.int32), 0)
        p_smem.index(0).store(p.to(dtype))
        alpha_smem.index(0).store(alpha)
        fence_async_shared()
        mbarrier.arrive(p_ready.index(0))
        p = gl.convert_layout(p.to(dtype), p_layout)
        for t in range(0, n_tiles - 1):
            slot = t % NS
            nslot = (t + 1) % NS
            nph = ((t + 1) // NS) & 1
            k1 = start + (t + 1) * BS
            # Tile t's value product over its first 128 columns, tile t + 1's score product box
            # by box, then the other 128 columns, which run during tile t + 1's softmax.
            acc_a, acc_b = _rescale_halves(acc_a, acc_b, alpha, rescale, o_layout)
            acc_a = warpgroup_mma(p, c0_smem.index(slot).slice(0, BQ, dim=1), acc_a, is_async=True)
            s = _issue_scores(
                qa0, qa1, qr, c0_smem, c1_smem, r_smem, ready_c0, ready_c1, ready_r, nslot, nph, k1, end, s
            )
            acc_b = warpgroup_mma(p, c0_smem.index(slot).slice(BQ, BQ, dim=1), acc_b, is_async=True)
            acc_a, s = warpgroup_mma_wait(num_outstanding=1, deps=(acc_a, s))
            mbarrier.arrive(empty_r.index(nslot))
            mbarrier.arrive(empty_c1.index(nslot))
            m, l_sum, p_next, alpha, moved = _softmax(
                s, m, l_sum, k1, pos, mask_at, end, qk_scale, s_layout, BS, RESCALE_SLACK
            )
            rescale = gl.max(moved.to(gl.int32), 0)
            acc_b, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc_b, p))
            mbarrier.arrive(empty_c0.index(slot))
            pb = (t + 1) % PB
            mbarrier.wait(p_free.index(pb), (((t + 1) // PB) & 1) ^ 1, pred=t + 1 >= PB)
            p_smem.index(pb).store(p_next.to(dtype))
            alpha_smem.index(pb).store(alpha)
            fence_async_shared()
            mbarrier.arrive(p_ready.index(pb))
            p = gl.convert_layout(p_next.to(dtype), p_layout)
        last = (n_tiles - 1) % NS
        acc_a, acc_b = _rescale_halves(acc_a, acc_b, alpha, rescale, o_layout)
        acc_a = warpgroup_mma(p, c0_smem.index(last).slice(0, BQ, dim=1), acc_a, is_async=True)
        acc_b = warpgroup_mma(p, c0_smem.index(last).slice(BQ, BQ, dim=1), acc_b, is_async=True)
        acc_a, acc_b, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc_a, acc_b, p))
        mbarrier.arrive(empty_c0.index(last))
    l_smem.store(l_sum)
    mbarrier.arrive(done)
    _store_rows(o, lse, acc_a, m, l_sum, i_m * 64, i_b, i_g, i_sp, n_splits, 0, Q, H, HG, HG, DC, SPLIT, True)
    _store_rows(
        o, lse, acc_b, m, l_sum, i_m * 64, i_b, i_g, i_sp, n_splits, BQ, Q, H, HG, HG, DC, SPLIT, False
    )


@gluon.jit
def _values_partition(
    c1_smem,
    p_smem,
    alpha_smem,
    l_smem,
    ready_c1,
    empty_c1,
    p_ready,
    p_free,
    done,
    o,
    lse,
    n_tiles,
    i_b,
    i_g,
    i_m,
    i_sp,
    n_splits,
    Q: gl.constexpr,
    H: gl.constexpr,
    G: gl.constexpr,
    DC: gl.constexpr,
    SPLIT: gl.constexpr,
):
    """Warpgroup 1: the value product of the second half of the columns with warpgroup 0's P,
    rescaled by its factors; then that half of the output."""
    HG: gl.constexpr = H // G
    NS: gl.constexpr = c1_smem.shape[0]
    PB: gl.constexpr = p_smem.shape[0]
    BH: gl.constexpr = c1_smem.shape[2]
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BH, 16]
    )
    vec: gl.constexpr = gl.SliceLayout(1, o_layout)
    acc = gl.zeros([64, BH], gl.float32, layout=o_layout)
    for t in range(n_tiles):
        slot = t % NS
        pb = t % PB
        mbarrier.wait(ready_c1.index(slot), (t // NS) & 1)
        mbarrier.wait(p_ready.index(pb), (t // PB) & 1)
        alpha = alpha_smem.index(pb).load(vec)
        if gl.min(alpha, 0) < 1.0:
            acc = acc * alpha[:, None]
        acc = warpgroup_mma(p_smem.index(pb), c1_smem.index(slot), acc, is_async=True)
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
        mbarrier.arrive(p_free.index(pb))
        mbarrier.arrive(empty_c1.index(slot))
    mbarrier.wait(done, 0)
    l_sum = l_smem.load(vec)
    _store_rows(
        o, lse, acc, l_sum, l_sum, i_m * 64, i_b, i_g, i_sp, n_splits, BH, Q, H, HG, HG, DC, SPLIT, False
    )


@gluon.jit
def paged_decode_wide_ws_kernel(
    q_a,
    q_r,
    desc_c,
    desc_r,
    o,
    lse,
    block_table,
    seq_lens,
    scale,
    s_qa_t,
    s_qa_h,
    s_qr_t,
    s_qr_h,
    max_pages,
    chunk,
    n_splits,
    Q: gl.constexpr,
    H: gl.constexpr,
    G: gl.constexpr,
    KA: gl.constexpr,
    DC: gl.constexpr,
    DR: gl.constexpr,
    PS: gl.constexpr,
    BM: gl.constexpr,  # 64: one block of rows, shared by the two warpgroups
    BS: gl.constexpr,
    BC: gl.constexpr,  # a box's columns, Dc / 2
    BR: gl.constexpr,
    NS: gl.constexpr,
    SPLIT: gl.constexpr,
    num_warps: gl.constexpr,  # 4: the default partition is warpgroup 0
):
    HG: gl.constexpr = H // G
    i_b, i_g, i_m, i_sp = _program_coords(Q, HG, G, BM)
    dtype: gl.constexpr = desc_c.dtype
    # The program's query rows in shared memory (the score products' A operands), zero past Ka
    # and Dr, in the tiles' layouts: the latent query as two halves of BC columns.
    row0 = i_m * BM
    b_q = _query_rows(q_a, s_qa_t, s_qa_h, row0, i_b, i_g, 0, Q, H, HG, HG, 0, KA, BC)
    qa0 = gl.allocate_shared_memory(dtype, [BM, BC], desc_c.layout, b_q)
    b_q = _query_rows(q_a, s_qa_t, s_qa_h, row0, i_b, i_g, BC, Q, H, HG, HG, 0, KA, BC)
    qa1 = gl.allocate_shared_memory(dtype, [BM, BC], desc_c.layout, b_q)
    b_q = _query_rows(q_r, s_qr_t, s_qr_h, row0, i_b, i_g, 0, Q, H, HG, HG, 0, DR, BR)
    qr = gl.allocate_shared_memory(dtype, [BM, BR], desc_r.layout, b_q)
    c0_smem = gl.allocate_shared_memory(dtype, [NS, BS, BC], desc_c.layout)
    c1_smem = gl.allocate_shared_memory(dtype, [NS, BS, BC], desc_c.layout)
    r_smem = gl.allocate_shared_memory(dtype, [NS, BS, BR], desc_r.layout)
    # P as the value product's A operand from shared memory: rows of BS 16-bit keys.
    p_layout: gl.constexpr = gl.NVMMASharedLayout(
        swizzle_byte_width=64 if BS == 32 else 128, element_bitwidth=16, rank=2
    )
    # P's buffers: two where they fit, so warpgroup 0 can write tile t + 1's while warpgroup 1
    # still reads tile t's; at 64-token tiles the second would pass the 227 KB a CTA may have.
    PB: gl.constexpr = 2 if BS == 32 else 1
    p_smem = gl.allocate_shared_memory(dtype, [PB, BM, BS], p_layout)
    vec_layout: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    alpha_smem = gl.allocate_shared_memory(gl.float32, [PB, BM], vec_layout)
    l_smem = gl.allocate_shared_memory(gl.float32, [BM], vec_layout)
    ready_c0 = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    ready_c1 = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    ready_r = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    empty_c0 = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    empty_c1 = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    empty_r = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    p_ready = gl.allocate_shared_memory(gl.int64, [PB, 1], mbarrier.MBarrierLayout())
    p_free = gl.allocate_shared_memory(gl.int64, [PB, 1], mbarrier.MBarrierLayout())
    done = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    for i in gl.static_range(NS):
        mbarrier.init(ready_c0.index(i), count=1)
        mbarrier.init(ready_c1.index(i), count=1)
        mbarrier.init(ready_r.index(i), count=1)
        mbarrier.init(empty_c0.index(i), count=1)
        mbarrier.init(empty_c1.index(i), count=2)
        mbarrier.init(empty_r.index(i), count=1)
    for i in gl.static_range(PB):
        mbarrier.init(p_ready.index(i), count=1)
        mbarrier.init(p_free.index(i), count=1)
    mbarrier.init(done, count=1)
    fence_async_shared()
    seq_len, start, end, n_tiles, mask_at = _key_range(seq_lens, i_b, i_sp, chunk, Q, BS, SPLIT)
    bt = block_table + i_b.to(gl.int64) * max_pages
    qk_scale = scale * 1.4426950408889634  # base 2: exp(x) = exp2(x * log2(e))
    # Registers: launched at 168 a thread (paged.py), warpgroup 1 takes 192 (its (64, 256) float32
    # accumulator is 128), the copy warp's group gives up all but 24 and warpgroup 0 gets the
    # rest (offline ptxas for sm_90a: 80 bytes of spills at Q = 1 and 2, 84 with splits; with
    # warpgroup 1 at 232, 128-140, and no lower split went below 84). The argument tuples are
    # written out in place: a tuple built once arrives with its constants turned into values.
    gl.warp_specialize(
        [
            (
                _scores_partition,
                (
                    qa0,
                    qa1,
                    qr,
                    c0_smem,
                    c1_smem,
                    r_smem,
                    p_smem,
                    alpha_smem,
                    l_smem,
                    ready_c0,
                    ready_c1,
                    ready_r,
                    empty_c0,
                    empty_c1,
                    empty_r,
                    p_ready,
                    p_free,
                    done,
                    o,
                    lse,
                    start,
                    end,
                    n_tiles,
                    mask_at,
                    seq_len,
                    qk_scale,
                    i_b,
                    i_g,
                    i_m,
                    i_sp,
                    n_splits,
                    Q,
                    H,
                    G,
                    DC,
                    SPLIT,
                ),
            ),
            (
                _values_partition,
                (
                    c1_smem,
                    p_smem,
                    alpha_smem,
                    l_smem,
                    ready_c1,
                    empty_c1,
                    p_ready,
                    p_free,
                    done,
                    o,
                    lse,
                    n_tiles,
                    i_b,
                    i_g,
                    i_m,
                    i_sp,
                    n_splits,
                    Q,
                    H,
                    G,
                    DC,
                    SPLIT,
                ),
            ),
            (
                _copy_partition,
                (
                    desc_c,
                    desc_r,
                    c0_smem,
                    c1_smem,
                    r_smem,
                    ready_c0,
                    ready_c1,
                    ready_r,
                    empty_c0,
                    empty_c1,
                    empty_r,
                    bt,
                    start,
                    n_tiles,
                    i_g * DC,
                    PS,
                ),
            ),
        ],
        [4, 1],
        [192, 24],
    )
