"""The row-major paged decode kernel for Hopper (sm_90), written in Gluon and warp-specialized in
FlashAttention-3's way: one warp copies the cache tiles, and each warpgroup of 64 query rows runs
its own online softmax with the score product of the next tile in flight.

Why not Triton: in `row_major.paged_decode_tma_kernel` the CTA's warps meet at barriers every tile
(the copy into a buffer must wait until every warp is done with it), so the two warpgroups of
GLA-2's 128 rows at Q = 2 run in lockstep, both waiting on the tensor cores at the same time and
both doing softmax while the tensor cores idle; Nsight Compute puts "barrier" first among their
stall reasons. Here the warps never meet inside the loop:
- A copy partition (one warp, 24 registers) issues tile t's TMA copies into slot t % NS as soon as
  every row warpgroup has released the slot's previous tile (`empty` barriers), and signals
  `ready`.
- Each consumer warpgroup (64 rows, whole rows per warp, so row reductions stay inside a warp)
  issues the score product of tile t + 1, rescales its accumulator, issues the value product of
  tile t, waits for the scores alone and computes tile t + 1's softmax while the value product
  still runs; then it releases tile t's slot and goes on, at its own pace. The warpgroups drift
  apart, so one's softmax overlaps the other's products. A block of 64 rows (GLA-2 at Q = 1) is
  one warpgroup, its copies still off its path.
- A warpgroup rescales its accumulator only on tiles where one of its rows' reference maximum
  moved, which happens only when a tile passes it by more than 2^8 (`RESCALE_SLACK`,
  FlashAttention-4's conditional rescaling): the 128 multiplies a thread a tile were about a
  quarter of the warpgroup's instructions, and skipping them took the tensor pipe from 74% to 79% of the
  cycles at GLA-2's Q = 2 (448-514 us at DEC-A, against 476-581 before, docs/benchmarks.md).
Triton leaves a warpgroup MMA in flight only as an accumulator for the next iteration, so a score
product issued a tile ahead is waited on at once; Gluon exposes the asynchronous MMA, its wait,
mbarriers and warp specialization. At DEC-A (GLA-2, Q = 2) this kernel took 535-538 us against
592 for the Triton kernel in the same run (docs/benchmarks.md).

Two GTA groups a program (GP = 2, `paged.pairs_fit`). GTA-8 at Q = 2 has 32 rows a group, half
a warpgroup's 64, and the Triton kernel that serves it (`keys_major.py`) stays at 77-81% of the
memory roofline. Adjacent groups' 128 columns lie side by side in a cache row, so this kernel
reads them as one 256-column tile and serves both groups' rows with one warpgroup: each row's
query columns sit over its own group's half (zero elsewhere), the score products run over each
half's Ka key columns only, and each row keeps its own group's half of the value product, the
other half being the same probabilities against the other group's values, never stored. At
DEC-A, Q = 2: 645-663 us against 708-734 for the Triton kernel in alternating runs in one call.

Same arguments, masking, splits and outputs as `row_major.paged_decode_tma_kernel` (paged.py's
module doc), for its common case only: one column block (Dc <= 256), 16-bit caches, 64 or 128 rows
a program, tiles inside one page. It is written against Triton 3.6's Gluon API, which is still
experimental and moves between releases: the launcher (paged.py, `gluon_ready`) takes it with that
Triton on a Hopper GPU and runs the Triton kernels elsewhere. Gluon has no interpreter: this
kernel is tested against the reference on a Hopper GPU (tests/kernels/test_decode.py); the
Triton kernel it mirrors is tested on the CPU too.
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


@gluon.jit
def _tile_row(bt, start, t, n_tiles, PS: gl.constexpr, BS: gl.constexpr):
    """Cache row of tile t's first key (page x PS + slot); 0 for a tile past the range."""
    key = start + t * BS
    page = gl.load(bt + key // PS, mask=t < n_tiles, other=0)
    return page * PS + key % PS


@gluon.jit
def _issue(desc_c, desc_r, c_smem, r_smem, ready, row, col, slot, pred):
    """The TMA copies of the tile at cache row `row` into `slot`, signalling `ready[slot]` when
    both have landed."""
    bar = ready.index(slot)
    mbarrier.expect(bar, desc_c.block_type.nbytes + desc_r.block_type.nbytes, pred=pred)
    tma.async_copy_global_to_shared(desc_c, [row, col], bar, c_smem.index(slot), pred=pred)
    tma.async_copy_global_to_shared(desc_r, [row, 0], bar, r_smem.index(slot), pred=pred)


@gluon.jit
def _zero_rows(c_buf, k0, end, BS: gl.constexpr):
    """Zero the cache rows of a tile at keys >= end (stale slots: 0 x NaN would poison the value
    product), 16 rows at a time: a whole-tile load would hold its values in registers beside the
    softmax's live state (it spilled). Each thread rewrites the elements it read."""
    ld: gl.constexpr = gl.BlockedLayout([1, 8], [1, 32], [4, 1], [1, 0])
    for i in gl.static_range(BS // 16):
        part = c_buf.slice(i * 16, 16)
        vals = part.load(ld)
        keys = k0 + i * 16 + gl.arange(0, 16, layout=gl.SliceLayout(1, ld))
        part.store(gl.where((keys < end)[:, None], vals, gl.zeros_like(vals)))


@gluon.jit
def _zero_past_end(c_buf, k0, end, BS: gl.constexpr):
    """`_zero_rows`, then the fence that hands the writes to the async proxy the MMAs read
    through, and the warpgroup's barrier that holds its warps until all are in. Both row
    warpgroups zero the same rows of the shared tile: identical writes, each before its own value
    product reads them."""
    _zero_rows(c_buf, k0, end, BS)
    fence_async_shared()
    gl.thread_barrier()


@gluon.jit
def _after_issue(x):
    """x, through a volatile move: the compiler keeps volatile assembly in program order, so work
    that depends on the result stays after the MMAs issued before it (LLVM hoisted the rescale of
    the accumulator above the score product's issue, out of the window where it overlaps)."""
    return gl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=False, pack=1)


# How far (base 2) a tile's row maximum may pass the maximum a row's probabilities are taken
# against before that reference moves (FlashAttention-4's conditional rescaling): until then the
# tile's probabilities reach at most 2^8, far inside float32 sums and bf16's range, and alpha
# stays exactly 1. Past the first tiles a row's reference rarely moves, so `_rows_partition`
# skips the rescale of its accumulator (128 multiplies a thread, about a quarter of the
# warpgroup's instructions a tile) on every tile where no row of the warpgroup moved.
RESCALE_SLACK = gl.constexpr(8.0)


@gluon.jit
def _softmax(
    s,
    m,
    l_sum,
    k0,
    pos,
    mask_at,
    end,
    qk_scale,
    s_layout: gl.constexpr,
    BS: gl.constexpr,
    SLACK: gl.constexpr,
):
    """Online softmax of one tile's scores (base 2) against the rows' reference maxima m, each
    moved to the tile's row maximum only where that passes it by more than SLACK (0: the exact
    running maximum). Returns (m, l_sum, p, alpha, moved)."""
    if k0 + BS > mask_at:
        keys = k0 + gl.arange(0, BS, layout=gl.SliceLayout(0, s_layout))
        visible = (keys[None, :] <= pos[:, None]) & (keys < end)[None, :]
        s = gl.where(visible, s, gl.full_like(s, float("-inf")))
    # The scale (> 0) goes onto the row maxima, and into the exponent's fused multiply-add: one
    # instruction an element instead of a multiply and a subtract.
    m_tile = gl.max(s, 1) * qk_scale
    moved = m_tile > m + SLACK
    m_new = gl.where(moved, m_tile, m)
    # A split may start past a row's causal limit: its max stays -inf, and -inf - -inf is NaN.
    m_c = gl.where(m_new == float("-inf"), gl.zeros_like(m_new), m_new)
    p = gl.exp2(s * qk_scale - m_c[:, None])
    alpha = gl.exp2(m - m_c)
    l_sum = l_sum * alpha + gl.sum(p, 1)
    return m_new, l_sum, p, alpha, moved


@gluon.jit
def _copy_partition(
    desc_c,
    desc_r,
    c_smem,
    r_smem,
    ready,
    empty,
    bt,
    start,
    n_tiles,
    col,
    PS: gl.constexpr,
):
    """The copy partition (one warp): tile t into slot t % NS once every row partition has
    released the slot's previous tile, t - NS. Its block-table load is this warp's alone, off the
    row partitions' path."""
    NS: gl.constexpr = c_smem.shape[0]
    BS: gl.constexpr = c_smem.shape[1]
    for t in range(n_tiles):
        slot = t % NS
        mbarrier.wait(empty.index(slot), ((t // NS) & 1) ^ 1, pred=t >= NS)
        _issue(
            desc_c, desc_r, c_smem, r_smem, ready, _tile_row(bt, start, t, n_tiles, PS, BS), col, slot, True
        )


@gluon.jit
def _score_issue(qa, qr, c_buf, r_buf, s, GP: gl.constexpr, KA: gl.constexpr, DC: gl.constexpr):
    """Issue a tile's score products. With two GTA groups a tile (GP = 2), only the key columns
    of each group's half, [0, Ka) and [Dc, Dc + Ka): a row's query is zero on the other group's
    half, so the product over the whole width would spend 4x the tensor-core time on zeros."""
    if GP == 1:
        s = warpgroup_mma(qa, c_buf.permute((1, 0)), s, use_acc=False, is_async=True)
    else:
        s = warpgroup_mma(
            qa.slice(0, KA, dim=1), c_buf.slice(0, KA, dim=1).permute((1, 0)), s, use_acc=False, is_async=True
        )
        s = warpgroup_mma(
            qa.slice(DC, KA, dim=1), c_buf.slice(DC, KA, dim=1).permute((1, 0)), s, is_async=True
        )
    return warpgroup_mma(qr, r_buf.permute((1, 0)), s, is_async=True)


@gluon.jit
def _store_rows(
    o,
    lse,
    acc,
    m,
    l_sum,
    row0,
    i_b,
    i_g,
    i_sp,
    n_splits,
    col0,
    Q: gl.constexpr,
    H: gl.constexpr,
    HG: gl.constexpr,
    HT: gl.constexpr,
    DC: gl.constexpr,
    SPLIT: gl.constexpr,
    WRITE_LSE: gl.constexpr,
):
    """The 64 output rows (b, q, h) from row `row0` of the program's block, normalized by their
    sums: acc holds output columns col0 onwards (wide_latent_ws.py stores its 512 in pieces:
    two of 128 from warpgroup 0, 256 from warpgroup 1), shifted by each row's group half where a
    tile holds two groups (HT = 2 x HG).
    With splits, the float32 partial and, where WRITE_LSE, the rows' base-2 log-sum-exp."""
    BN: gl.constexpr = acc.shape[1]
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16]
    )
    l_o = gl.convert_layout(l_sum, gl.SliceLayout(1, o_layout))
    o_mo = row0 + gl.arange(0, 64, layout=gl.SliceLayout(1, o_layout))
    m_mo = o_mo < Q * HT
    o_row = (i_b.to(gl.int64) * Q + o_mo // HT) * H + i_g * HT + o_mo % HT
    o_co = (
        col0
        + gl.arange(0, BN, layout=gl.SliceLayout(0, o_layout))[None, :]
        - ((o_mo % HT) // HG * DC)[:, None]
    )
    m_co = (o_co >= 0) & (o_co < DC)
    if SPLIT:
        # No visible key (l_sum == 0): an empty partial, weight 2^-inf = 0 in the merge.
        seen = l_o > 0
        safe = gl.where(seen, l_o, gl.full_like(l_o, 1.0))
        inv = gl.where(seen, 1.0 / safe, gl.zeros_like(l_o))
        if WRITE_LSE:
            m_o = gl.convert_layout(m, gl.SliceLayout(1, o_layout))
            b_lse = gl.where(seen, m_o + gl.log2(safe), gl.full_like(l_o, float("-inf")))
            gl.store(lse + o_row * n_splits + i_sp, b_lse, mask=m_mo)
        p_o = o + ((o_row * n_splits + i_sp) * DC)[:, None] + o_co
    else:
        # Key 0 is visible to every row (seq_len >= Q): l_sum > 0.
        inv = 1.0 / l_o
        p_o = o + (o_row * DC)[:, None] + o_co
    gl.store(p_o, (acc * inv[:, None]).to(o.dtype.element_ty), mask=m_mo[:, None] & m_co)


@gluon.jit
def _rows_partition(
    qa_smem,
    qr_smem,
    c_smem,
    r_smem,
    ready,
    empty,
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
    KA: gl.constexpr,
    DC: gl.constexpr,
    GP: gl.constexpr,
    SPLIT: gl.constexpr,
    WG: gl.constexpr,
):
    """One warpgroup's 64 rows, the WG-th of the program's block: online softmax over the tiles
    with the score product of tile t + 1 in flight beside tile t's value product (module doc),
    each slot released to the copy partition once this warpgroup's products are done with it;
    then its rows' output, or with splits the float32 partial and its base-2 log-sum-exp. The
    block's rows, tile shape and buffer count come from the buffers' types, so the arguments
    cannot disagree with them. With GP = 2 the tile holds two groups (module doc): each row's
    output is its own group's half of the accumulator."""
    HG: gl.constexpr = H // G
    HT: gl.constexpr = HG * GP
    BM: gl.constexpr = qa_smem.shape[0]
    NS: gl.constexpr = c_smem.shape[0]
    BS: gl.constexpr = c_smem.shape[1]
    BC: gl.constexpr = c_smem.shape[2]
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BS, 16]
    )
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BC, 16]
    )
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    dtype: gl.constexpr = c_smem.dtype
    qa = qa_smem.slice(WG * 64, 64)
    qr = qr_smem.slice(WG * 64, 64)
    o_ms = i_m * BM + WG * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
    pos = seq_len - Q + o_ms // HT
    m = gl.full([64], float("-inf"), gl.float32, layout=gl.SliceLayout(1, s_layout))
    l_sum = gl.zeros([64], gl.float32, layout=gl.SliceLayout(1, s_layout))
    acc = gl.zeros([64, BC], gl.float32, layout=o_layout)
    s = gl.zeros([64, BS], gl.float32, layout=s_layout)
    if n_tiles > 0:
        mbarrier.wait(ready.index(0), 0)
        if start + BS > end:
            _zero_past_end(c_smem.index(0), start, end, BS)
        s = _score_issue(qa, qr, c_smem.index(0), r_smem.index(0), s, GP, KA, DC)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        m, l_sum, p, alpha, moved = _softmax(
            s, m, l_sum, start, pos, mask_at, end, qk_scale, s_layout, BS, RESCALE_SLACK
        )
        p = gl.convert_layout(p.to(dtype), p_layout)
        # Any row of the warpgroup whose reference moved (the accumulator still 0 here).
        rescale = gl.max(moved.to(gl.int32), 0)
        for t in range(0, n_tiles - 1):
            slot = t % NS
            nslot = (t + 1) % NS
            k1 = start + (t + 1) * BS
            mbarrier.wait(ready.index(nslot), ((t + 1) // NS) & 1)
            if k1 + BS > end:
                _zero_past_end(c_smem.index(nslot), k1, end, BS)
            s = _score_issue(qa, qr, c_smem.index(nslot), r_smem.index(nslot), s, GP, KA, DC)
            if rescale > 0:
                acc = acc * _after_issue(gl.convert_layout(alpha, gl.SliceLayout(1, o_layout)))[:, None]
            acc = warpgroup_mma(p, c_smem.index(slot), acc, is_async=True)
            s = warpgroup_mma_wait(num_outstanding=1, deps=(s,))
            m, l_sum, p_next, alpha, moved = _softmax(
                s, m, l_sum, k1, pos, mask_at, end, qk_scale, s_layout, BS, RESCALE_SLACK
            )
            rescale = gl.max(moved.to(gl.int32), 0)
            acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
            mbarrier.arrive(empty.index(slot))
            p = gl.convert_layout(p_next.to(dtype), p_layout)
        last = (n_tiles - 1) % NS
        if rescale > 0:
            acc = acc * _after_issue(gl.convert_layout(alpha, gl.SliceLayout(1, o_layout)))[:, None]
        acc = warpgroup_mma(p, c_smem.index(last), acc, is_async=True)
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    _store_rows(
        o, lse, acc, m, l_sum, i_m * BM + WG * 64, i_b, i_g, i_sp, n_splits, 0, Q, H, HG, HT, DC, SPLIT, True
    )


@gluon.jit
def _program_coords(Q: gl.constexpr, HT: gl.constexpr, GT: gl.constexpr, BM: gl.constexpr):
    """(i_b, i_g, i_m, i_sp): the program's sequence, tile group (a group, or with GP = 2 a pair
    of groups), block of BM rows and key range; programs run (sequence, tile group, row block)
    along axis 0, key ranges along axis 1 (paged.py's grid)."""
    RB: gl.constexpr = (Q * HT + BM - 1) // BM
    i_p = gl.program_id(0)
    i_bg = i_p // RB
    return i_bg // GT, i_bg % GT, i_p % RB, gl.program_id(1)


@gluon.jit
def _key_range(seq_lens, i_b, i_sp, chunk, Q: gl.constexpr, BS: gl.constexpr, SPLIT: gl.constexpr):
    """(seq_len, start, end, n_tiles, mask_at) of the program's keys: its split's range (or the
    whole sequence), the BS-key tiles covering it, and the key from which tiles need the mask."""
    seq_len = gl.load(seq_lens + i_b)
    if SPLIT:
        start = i_sp * chunk
        end = gl.minimum(start + chunk, seq_len)
    else:
        start = 0
        end = seq_len
    n_tiles = gl.cdiv(gl.maximum(end - start, 0), BS)
    # Keys from here on need the mask: past the range's end, or past the first query row's
    # position (seq_len - Q), which later rows see but it does not.
    mask_at = gl.minimum(end, seq_len - Q + 1)
    return seq_len, start, end, n_tiles, mask_at


@gluon.jit
def _query_rows(
    ptr,
    s_t,
    s_h,
    row0,
    i_b,
    i_g,
    col0,
    Q: gl.constexpr,
    H: gl.constexpr,
    HG: gl.constexpr,
    HT: gl.constexpr,
    HALF: gl.constexpr,
    LIMIT: gl.constexpr,
    BN: gl.constexpr,
):
    """64 query rows from row `row0` of the program's block, BN columns from col0 (zero from
    column LIMIT on and past the rows). Row m: query position m // HT, head i_g * HT + m % HT.
    With two groups a tile (HT = 2 x HG) a row's columns sit over its own group's half, HALF
    columns to the right for the second group (HALF = 0: not shifted)."""
    ld: gl.constexpr = gl.BlockedLayout([1, 8], [1, 32], [4, 1], [1, 0])
    o_m = row0 + gl.arange(0, 64, layout=gl.SliceLayout(1, ld))
    o_tok = i_b.to(gl.int64) * Q + o_m // HT
    o_h = i_g * HT + o_m % HT
    o_c = col0 + gl.arange(0, BN, layout=gl.SliceLayout(0, ld))[None, :] - ((o_m % HT) // HG * HALF)[:, None]
    mask = (o_m < Q * HT)[:, None] & (o_c >= 0) & (o_c < LIMIT)
    return gl.load(ptr + (o_tok * s_t + o_h * s_h)[:, None] + o_c, mask=mask, other=0.0)


@gluon.jit
def paged_decode_ws_kernel(
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
    BM: gl.constexpr,
    BS: gl.constexpr,
    BC: gl.constexpr,
    BR: gl.constexpr,
    NS: gl.constexpr,
    GP: gl.constexpr,  # groups a tile: 1, or 2 for GTA's adjacent groups (module doc)
    SPLIT: gl.constexpr,
    num_warps: gl.constexpr,  # 4: the default partition is the first row partition
):
    HG: gl.constexpr = H // G
    HT: gl.constexpr = HG * GP  # heads a tile serves
    i_b, i_g, i_m, i_sp = _program_coords(Q, HT, G // GP, BM)
    dtype: gl.constexpr = desc_c.dtype
    # The program's query rows into shared memory (the score products' A operand), zero past Ka
    # and Dr, in the tiles' layouts (same widths, so the same swizzle), 64 rows at a time: the
    # whole block would take 160 registers a thread, of the 168 the partitions leave outside them
    # (it spilled).
    qa_smem = gl.allocate_shared_memory(dtype, [BM, BC], desc_c.layout)
    qr_smem = gl.allocate_shared_memory(dtype, [BM, BR], desc_r.layout)
    for i in gl.static_range(BM // 64):
        row0 = i_m * BM + i * 64
        qa_smem.slice(i * 64, 64).store(
            _query_rows(q_a, s_qa_t, s_qa_h, row0, i_b, i_g, 0, Q, H, HG, HT, DC, KA, BC)
        )
        qr_smem.slice(i * 64, 64).store(
            _query_rows(q_r, s_qr_t, s_qr_h, row0, i_b, i_g, 0, Q, H, HG, HT, 0, DR, BR)
        )
    c_smem = gl.allocate_shared_memory(dtype, [NS, BS, BC], desc_c.layout)
    r_smem = gl.allocate_shared_memory(dtype, [NS, BS, BR], desc_r.layout)
    ready = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [NS, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(NS):
        mbarrier.init(ready.index(i), count=1)
        mbarrier.init(empty.index(i), count=BM // 64)
    fence_async_shared()
    seq_len, start, end, n_tiles, mask_at = _key_range(seq_lens, i_b, i_sp, chunk, Q, BS, SPLIT)
    bt = block_table + i_b.to(gl.int64) * max_pages
    col = i_g * GP * DC
    qk_scale = scale * 1.4426950408889634  # base 2: exp(x) = exp2(x * log2(e))
    # Registers are handed out by warpgroup: the copy warp's group gives up all but 24, the
    # second row partition takes 240 (its (64, Dc) float32 accumulator alone is 128 a thread) and
    # the default partition the rest, 248 (offline ptxas for sm_90a: 4 bytes of spills at GLA-2's
    # Q = 2 tiles; 52-100 with 248 or 256 for the worker, 68 with 224).
    # The partitions' arguments are written out in each tuple: a tuple built once and reused
    # arrived with its constants turned into values, and a shared tuple plus a tuple of constants
    # fails to compile (its concatenation unwraps them to Python ints). The partitions take their
    # tile shapes and buffer counts from the buffers' types instead of arguments.
    if BM == 128:
        gl.warp_specialize(
            [
                (
                    _rows_partition,
                    (
                        qa_smem,
                        qr_smem,
                        c_smem,
                        r_smem,
                        ready,
                        empty,
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
                        KA,
                        DC,
                        GP,
                        SPLIT,
                        0,
                    ),
                ),
                (
                    _rows_partition,
                    (
                        qa_smem,
                        qr_smem,
                        c_smem,
                        r_smem,
                        ready,
                        empty,
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
                        KA,
                        DC,
                        GP,
                        SPLIT,
                        1,
                    ),
                ),
                (
                    _copy_partition,
                    (desc_c, desc_r, c_smem, r_smem, ready, empty, bt, start, n_tiles, col, PS),
                ),
            ],
            [4, 1],
            [240, 24],
        )
    else:
        gl.warp_specialize(
            [
                (
                    _rows_partition,
                    (
                        qa_smem,
                        qr_smem,
                        c_smem,
                        r_smem,
                        ready,
                        empty,
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
                        KA,
                        DC,
                        GP,
                        SPLIT,
                        0,
                    ),
                ),
                (
                    _copy_partition,
                    (desc_c, desc_r, c_smem, r_smem, ready, empty, bt, start, n_tiles, col, PS),
                ),
            ],
            [1],
            [24],
        )
    for i in gl.static_range(NS):
        mbarrier.invalidate(ready.index(i))
        mbarrier.invalidate(empty.index(i))
