"""The paged decode kernel with its products transposed: keys along the rows, query rows along the
columns ("swap AB", as FlashInfer and FlashMLA do for decode).

A group's query rows are few (GTA-8 at DEC-A: 16 at Q = 1, 32 at Q = 2). As the M side of an MMA
they fall below Hopper's 64-row warpgroup MMA, so Triton runs the row-major kernel (paged.py) on
the older warp-level MMA. Here the score product is S^T = C_a @ qa^T (BS x BM: the tile's tokens
are M) and the value product acc^T = C^T @ P^T (Dc x BM), so M is the tile width or the cache
width, and the few rows are the N side, which may be as small as 8.

The cache row is read as two column ranges, [0, Ka) and [Ka, Dc): the score runs over the first
only, where the row-major kernel multiplies zero-padded query columns over all Dc (GTA: a third of
its score FLOPs), and each range has its own value accumulator. GLA (Ka = Dc) has no second range.

Two ways to load a tile, one kernel each around the same step (`_tile_step`):
- `paged_decode_keys_major_kernel` gathers each token's row through the block table (tiles may
  span pages; any page size).
- `paged_decode_keys_major_tma_kernel` takes tiles that lie inside one page (page_size a multiple
  of BS) and loads each as one rectangle with Hopper's tensor memory accelerator (TMA): one
  block-table entry a tile instead of one address per token and column, and the copy runs
  asynchronously into shared memory while the warps compute. Column ranges padded past Ka (or
  Dc, Dr) read neighbouring columns, which meet zero query columns in the score and are never
  stored; the rows of the last tile past the range's end are zeroed (past the sequence they are
  stale slots, and 0 x NaN would poison the value product).

Same arguments, masking, splits and partial outputs as `paged_decode_kernel` (paged.py's module
doc); the launcher there chooses by `Config.keys_major` and `Config.tma`.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _queries(q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BA, BR):
    """The program's query rows, transposed: (BA, BM) and (BR, BM), zero past Ka and Dr."""
    HG: tl.constexpr = H // G
    o_m = i_m * BM + tl.arange(0, BM)
    m_m = o_m < Q * HG
    o_q = o_m // HG
    o_h = i_g * HG + o_m % HG
    o_tok = i_b.to(tl.int64) * Q + o_q
    o_a = tl.arange(0, BA)
    o_r = tl.arange(0, BR)
    p_qa = q_a + o_tok[None, :] * s_qa_t + o_h[None, :] * s_qa_h + o_a[:, None]
    b_qa = tl.load(p_qa, mask=m_m[None, :] & (o_a < KA)[:, None], other=0.0)
    p_qr = q_r + o_tok[None, :] * s_qr_t + o_h[None, :] * s_qr_h + o_r[:, None]
    b_qr = tl.load(p_qr, mask=m_m[None, :] & (o_r < DR)[:, None], other=0.0)
    return b_qa, b_qr, m_m, o_q, o_h, o_tok


@triton.jit
def program_coords(Q, H, G, BM):
    """(sequence, group, row block, split) of this program. The row blocks of a group are adjacent
    programs: they read the same cache tiles, which the later ones then find in L2."""
    RB: tl.constexpr = (Q * (H // G) + BM - 1) // BM
    i_p, i_sp = tl.program_id(0), tl.program_id(1)
    i_bg, i_m = i_p // RB, i_p % RB
    return i_bg // G, i_bg % G, i_m, i_sp


@triton.jit
def key_range(seq_lens, i_b, i_sp, chunk, SPLIT):
    """(seq_len, start, end): the keys this program reads, split i_sp of chunk keys or all of them."""
    seq_len = tl.load(seq_lens + i_b)
    if SPLIT:
        start = i_sp * chunk
        end = tl.minimum(start + chunk, seq_len)
    else:
        start = 0
        end = seq_len
    return seq_len, start, end


# The TMA kernels read a sequence's block table 32 entries (a window of 32 pages) at a time, once
# per window before its part of the key loop, and pick each tile's page out of registers: with the
# page a `tl.load` inside the loop, Triton's pipeliner issued no TMA copy more than one tile ahead
# whatever num_stages said (offline for sm_90a: GLA-2's kernel kept 82 KB of shared memory, two
# tile buffers, at 2-4 stages). A (1, 32) tensor lies whole in every warp, so the pick is a
# reduction inside each warp; over the whole range's entries at once (128 at DEC-A, spread over
# the warps) it took two CTA barriers a tile (GLA-2 at DEC-A, alternating runs in one call: Q = 1
# 330-342 us against 333-379, Q = 2 530-542 against 507-553).
WINDOW = tl.constexpr(32)


@triton.jit
def windows(start, end, PS):
    """Range bounds of the windows that keys start .. end - 1 touch (pages of PS keys)."""
    WS: tl.constexpr = WINDOW * PS
    return start // WS, tl.cdiv(end, WS)


@triton.jit
def window_keys(start, end, i_w, PS):
    """Range bounds of the keys of start .. end - 1 that lie in window i_w."""
    WS: tl.constexpr = WINDOW * PS
    return tl.maximum(start, i_w * WS), tl.minimum(end, i_w * WS + WS)


@triton.jit
def page_window(block_table, i_b, i_w, max_pages):
    """Block-table entries i_w * 32 .. i_w * 32 + 31 of sequence i_b as a (1, 32) tensor, 0 past
    the table's width."""
    o_w = i_w * WINDOW + tl.arange(0, WINDOW)[None, :]
    return tl.load(block_table + i_b.to(tl.int64) * max_pages + o_w, mask=o_w < max_pages, other=0)


@triton.jit
def window_row(b_pages, i_w, i_s, PS):
    """The cache row (page x PS + slot) of key i_s, inside window i_w of `page_window`."""
    o_w = tl.arange(0, WINDOW)[None, :]
    b_page = tl.sum(tl.sum(tl.where(o_w == i_s // PS - i_w * WINDOW, b_pages, 0), 1), 0)
    return b_page * PS + i_s % PS


@triton.jit
def page_row(block_table, i_b, i_s, max_pages, PS):
    """The cache row of key i_s by one load of its block-table entry (outside the key loop)."""
    b_page = tl.load(block_table + i_b.to(tl.int64) * max_pages + i_s // PS)
    return b_page * PS + i_s % PS


@triton.jit
def masked_from(end, seq_len, Q):
    """Keys from here on need the mask: past the range's end, or past the first query row's
    position (seq_len - Q), which later rows see but it does not. A tile wholly before it skips the
    mask through a scalar branch in the loop; with Q query positions only the last tile or two take
    it. (Two loops, unmasked then masked, timed the same: GTA-8 at DEC-A Q = 2 695-712 us against
    707-718, in alternating runs.)"""
    return tl.minimum(end, seq_len - Q + 1)


@triton.jit
def _empty_state(BM, BA, BB, BS):
    """Online-softmax state of BM rows: running max, value accumulators (transposed), and the
    running sum kept per (token slot, row) of a tile, summed over the slots only at the end. The
    tokens are the MMA's M side, spread over the warps, so summing them every tile would be a
    second cross-warp reduction through shared memory beside the max's (deferred: GTA-8 at DEC-A
    599 -> 561 us at Q = 1, 769 -> 744 at Q = 2, one run)."""
    b_m = tl.full([BM], float("-inf"), dtype=tl.float32)
    b_l = tl.zeros([BS, BM], dtype=tl.float32)
    b_acc_a = tl.zeros([BA, BM], dtype=tl.float32)
    b_acc_b = tl.zeros([BB, BM], dtype=tl.float32) if BB > 0 else b_acc_a
    return b_m, b_l, b_acc_a, b_acc_b


@triton.jit
def _tile_step(
    b_ca, b_cb, b_r, b_qa, b_qr, o_s, m_s, pos, b_m, b_l, b_acc_a, b_acc_b, qk_scale, BB, MASKED, PRECISION
):
    """One tile of the online softmax: scores, rescale, value products. Returns (m, l, acc_a, acc_b),
    l per token slot (`_empty_state`), m in base-2 units. MASKED applies the causal and range mask
    (`masked_from` says which tiles need it)."""
    # [BS, BA] @ [BA, BM] + [BS, BR] @ [BR, BM] -> [BS, BM], scaled; separate dots for the layout
    # (row_major._tile_step)
    b_s = tl.dot(b_ca, b_qa, input_precision=PRECISION) * qk_scale
    b_s += tl.dot(b_r, b_qr, input_precision=PRECISION) * qk_scale
    if MASKED:
        b_s = tl.where((o_s[:, None] <= pos[None, :]) & m_s[:, None], b_s, float("-inf"))
    b_mn = tl.maximum(b_m, tl.max(b_s, 0))
    b_mc = tl.where(b_mn == float("-inf"), 0.0, b_mn)  # a split past a row's causal limit
    b_p = tl.exp2(b_s - b_mc[None, :])
    b_rs = tl.exp2(b_m - b_mc)
    b_l = b_l * b_rs[None, :] + b_p
    b_p = b_p.to(b_ca.dtype)
    # [BA, BS] @ [BS, BM] -> [BA, BM], and the same for columns [Ka, Dc)
    b_acc_a = tl.dot(tl.trans(b_ca), b_p, b_acc_a * b_rs[None, :], input_precision=PRECISION)
    if BB > 0:
        b_acc_b = tl.dot(tl.trans(b_cb), b_p, b_acc_b * b_rs[None, :], input_precision=PRECISION)
    return b_mn, b_l, b_acc_a, b_acc_b


@triton.jit
def _store(o, lse, b_acc_a, b_acc_b, b_m, b_l, m_m, o_tok, o_h, i_sp, n_splits, H, KA, DC, BA, BB, SPLIT):
    o_a = tl.arange(0, BA)
    o_row_out = o_tok * H + o_h
    if SPLIT:
        b_seen = b_l > 0
        b_l = tl.where(b_seen, b_l, 1.0)
        b_inv = tl.where(b_seen, 1.0 / b_l, 0.0)
        b_lse = tl.where(b_seen, b_m + tl.log2(b_l), float("-inf"))
        p_o = o + ((o_row_out * n_splits + i_sp) * DC)[None, :]
        tl.store(lse + o_row_out * n_splits + i_sp, b_lse, mask=m_m)
    else:
        b_inv = 1.0 / b_l  # key 0 is visible to every row
        p_o = o + (o_row_out * DC)[None, :]
    tl.store(
        p_o + o_a[:, None],
        (b_acc_a * b_inv[None, :]).to(o.dtype.element_ty),
        mask=(o_a < KA)[:, None] & m_m[None, :],
    )
    if BB > 0:
        o_bc = KA + tl.arange(0, BB)
        tl.store(
            p_o + o_bc[:, None],
            (b_acc_b * b_inv[None, :]).to(o.dtype.element_ty),
            mask=(o_bc < DC)[:, None] & m_m[None, :],
        )


@triton.jit
def _gathered_tiles(c, r, block_table, i_b, i_g, i_s, end, max_pages, G, KA, DC, DR, PS, BS, BA, BB, BR):
    """Tokens i_s .. i_s + BS - 1 up to `end`, each row through the block table: (C[:, :Ka],
    C[:, Ka:], R) rows, the tokens' positions, and which of them are in range."""
    o_s = i_s + tl.arange(0, BS)
    m_s = o_s < end
    o_a = tl.arange(0, BA)
    o_r = tl.arange(0, BR)
    b_page = tl.load(block_table + i_b.to(tl.int64) * max_pages + o_s // PS, mask=m_s, other=0)
    o_row = b_page.to(tl.int64) * PS + o_s % PS
    p_row = (o_row * G + i_g) * DC
    b_ca = tl.load(c + p_row[:, None] + o_a[None, :], mask=m_s[:, None] & (o_a < KA)[None, :], other=0.0)
    b_r = tl.load(r + o_row[:, None] * DR + o_r[None, :], mask=m_s[:, None] & (o_r < DR)[None, :], other=0.0)
    if BB > 0:
        o_bc = KA + tl.arange(0, BB)
        b_cb = tl.load(
            c + p_row[:, None] + o_bc[None, :], mask=m_s[:, None] & (o_bc < DC)[None, :], other=0.0
        )
    else:
        b_cb = b_ca
    return b_ca, b_cb, b_r, o_s, m_s


@triton.jit
def paged_decode_keys_major_kernel(
    q_a,
    q_r,
    c,
    r,
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
    Q: tl.constexpr,
    H: tl.constexpr,
    G: tl.constexpr,
    KA: tl.constexpr,
    DC: tl.constexpr,
    DR: tl.constexpr,
    PS: tl.constexpr,
    BM: tl.constexpr,
    BS: tl.constexpr,
    BA: tl.constexpr,  # columns [0, Ka), padded to a power of two
    BB: tl.constexpr,  # columns [Ka, Dc), padded; 0: none (GLA)
    BR: tl.constexpr,
    SPLIT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_b, i_g, i_m, i_sp = program_coords(Q, H, G, BM)
    qk_scale = scale * 1.4426950408889634  # base 2
    b_qa, b_qr, m_m, o_q, o_h, o_tok = _queries(
        q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BA, BR
    )
    seq_len, start, end = key_range(seq_lens, i_b, i_sp, chunk, SPLIT)
    pos = seq_len - Q + o_q  # each row's query position; padding rows see every key
    b_m, b_l, b_acc_a, b_acc_b = _empty_state(BM, BA, BB, BS)
    mask_at = masked_from(end, seq_len, Q)
    for i_s in range(start, end, BS):
        b_ca, b_cb, b_r, o_s, m_s = _gathered_tiles(
            c, r, block_table, i_b, i_g, i_s, end, max_pages, G, KA, DC, DR, PS, BS, BA, BB, BR
        )
        b_m, b_l, b_acc_a, b_acc_b = _tile_step(
            b_ca,
            b_cb,
            b_r,
            b_qa,
            b_qr,
            o_s,
            m_s,
            pos,
            b_m,
            b_l,
            b_acc_a,
            b_acc_b,
            qk_scale,
            BB,
            i_s + BS > mask_at,
            PRECISION,
        )
    _store(
        o,
        lse,
        b_acc_a,
        b_acc_b,
        b_m,
        tl.sum(b_l, 0),
        m_m,
        o_tok,
        o_h,
        i_sp,
        n_splits,
        H,
        KA,
        DC,
        BA,
        BB,
        SPLIT,
    )


@triton.jit
def _page_tiles(desc_ca, desc_cb, desc_r, row, i_g, KA, DC, BB):
    """The tile of tokens from cache row `row` on, inside one page: (C[:, :Ka], C[:, Ka:], R) rows."""
    b_ca = desc_ca.load([row, i_g * DC])
    b_r = desc_r.load([row, 0])
    if BB > 0:
        b_cb = desc_cb.load([row, i_g * DC + KA])
    else:
        b_cb = b_ca
    return b_ca, b_cb, b_r


@triton.jit
def paged_decode_keys_major_tma_kernel(
    q_a,
    q_r,
    desc_ca,  # cache as (pages x page_size, G x Dc), blocks (BS, BA)
    desc_cb,  # the same, blocks (BS, BB); unread when BB == 0
    desc_r,  # RoPE keys as (pages x page_size, Dr), blocks (BS, BR)
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
    Q: tl.constexpr,
    H: tl.constexpr,
    G: tl.constexpr,
    KA: tl.constexpr,
    DC: tl.constexpr,
    DR: tl.constexpr,
    PS: tl.constexpr,  # a multiple of BS: no tile spans two pages
    BM: tl.constexpr,
    BS: tl.constexpr,
    BA: tl.constexpr,
    BB: tl.constexpr,
    BR: tl.constexpr,
    SPLIT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_b, i_g, i_m, i_sp = program_coords(Q, H, G, BM)
    qk_scale = scale * 1.4426950408889634  # base 2
    b_qa, b_qr, m_m, o_q, o_h, o_tok = _queries(
        q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BA, BR
    )
    # chunk is a multiple of BS, so split ranges start on a tile, inside a page.
    seq_len, start, end = key_range(seq_lens, i_b, i_sp, chunk, SPLIT)
    end_full = start + tl.maximum(end - start, 0) // BS * BS
    pos = seq_len - Q + o_q
    b_m, b_l, b_acc_a, b_acc_b = _empty_state(BM, BA, BB, BS)
    o_t = tl.arange(0, BS)
    m_full = o_t < BS
    mask_at = masked_from(end, seq_len, Q)
    w_first, w_end = windows(start, end_full, PS)
    for i_w in range(w_first, w_end):
        b_pages = page_window(block_table, i_b, i_w, max_pages)
        k_first, k_end = window_keys(start, end_full, i_w, PS)
        for i_s in range(k_first, k_end, BS):
            row = window_row(b_pages, i_w, i_s, PS)
            b_ca, b_cb, b_r = _page_tiles(desc_ca, desc_cb, desc_r, row, i_g, KA, DC, BB)
            b_m, b_l, b_acc_a, b_acc_b = _tile_step(
                b_ca,
                b_cb,
                b_r,
                b_qa,
                b_qr,
                i_s + o_t,
                m_full,
                pos,
                b_m,
                b_l,
                b_acc_a,
                b_acc_b,
                qk_scale,
                BB,
                i_s + BS > mask_at,
                PRECISION,
            )
    if end_full < end:
        row = page_row(block_table, i_b, end_full, max_pages, PS)
        b_ca, b_cb, b_r = _page_tiles(desc_ca, desc_cb, desc_r, row, i_g, KA, DC, BB)
        o_s = end_full + o_t
        m_s = o_s < end
        b_ca = tl.where(m_s[:, None], b_ca, 0.0)
        b_cb = tl.where(m_s[:, None], b_cb, 0.0)
        b_r = tl.where(m_s[:, None], b_r, 0.0)
        b_m, b_l, b_acc_a, b_acc_b = _tile_step(
            b_ca,
            b_cb,
            b_r,
            b_qa,
            b_qr,
            o_s,
            m_s,
            pos,
            b_m,
            b_l,
            b_acc_a,
            b_acc_b,
            qk_scale,
            BB,
            True,
            PRECISION,
        )
    _store(
        o,
        lse,
        b_acc_a,
        b_acc_b,
        b_m,
        tl.sum(b_l, 0),
        m_m,
        o_tok,
        o_h,
        i_sp,
        n_splits,
        H,
        KA,
        DC,
        BA,
        BB,
        SPLIT,
    )
