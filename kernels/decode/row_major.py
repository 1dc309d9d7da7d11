"""The paged decode kernels with query rows along the MMA rows: scores S = qa @ C^T + qr @ R^T
(BM x BS) and values acc = P @ C (BM x Dc), for groups of >= 64 rows (GLA, MLA, GTA with many
heads a group), which fill Hopper's warpgroup MMA as they are. Groups of fewer rows run the
transposed kernels (keys_major.py).

The same loaded tile C[BS, Dc] feeds the score product (qa zero-padded beyond Ka) and the value
product. A cache wider than 256 columns (MLA's latent of 512) is read as two column blocks,
[0, BC) and [BC, BC + BD), each with its part of the queries and its own value accumulator: a
TMA box is at most 256 columns a side. Two ways to load a tile, one kernel each around the same
step (`_tile_step`):
- `paged_decode_kernel` gathers each token's row through the block table (tiles may span pages;
  any page size).
- `paged_decode_tma_kernel` takes tiles inside one page (page_size a multiple of BS) and loads
  each as one TMA rectangle: one block-table entry a tile, the copy asynchronous into shared
  memory. Columns padded past Dc (a power of two) read the neighbouring group's columns or, past
  the row, zeros: they meet zero query columns in the score and are never stored. Rows of the
  last tile past the range's end are zeroed (stale slots; 0 x NaN would poison the value product).

Arguments, masking, splits and partial outputs: paged.py's module doc.
"""

from __future__ import annotations

import triton
import triton.language as tl

from redpajama.kernels.decode.keys_major import (
    key_range,
    masked_from,
    page_row,
    page_window,
    program_coords,
    window_keys,
    window_row,
    windows,
)


@triton.jit
def _queries(q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BC, BD, BR):
    """The program's query rows (BM, BC), (BM, BD) and (BM, BR), zero past Ka and Dr. Row m of the
    group's block i_m: query position m // (H/G), head i_g * H/G + m % (H/G)."""
    HG: tl.constexpr = H // G
    o_m = i_m * BM + tl.arange(0, BM)
    m_m = o_m < Q * HG
    o_q = o_m // HG
    o_h = i_g * HG + o_m % HG
    o_tok = i_b.to(tl.int64) * Q + o_q
    o_c = tl.arange(0, BC)
    o_r = tl.arange(0, BR)
    p_q = q_a + o_tok[:, None] * s_qa_t + o_h[:, None] * s_qa_h
    b_qa = tl.load(p_q + o_c[None, :], mask=m_m[:, None] & (o_c < KA)[None, :], other=0.0)
    if BD > 0:
        o_d = BC + tl.arange(0, BD)
        b_qd = tl.load(p_q + o_d[None, :], mask=m_m[:, None] & (o_d < KA)[None, :], other=0.0)
    else:
        b_qd = b_qa
    p_qr = q_r + o_tok[:, None] * s_qr_t + o_h[:, None] * s_qr_h + o_r[None, :]
    b_qr = tl.load(p_qr, mask=m_m[:, None] & (o_r < DR)[None, :], other=0.0)
    return b_qa, b_qd, b_qr, m_m, o_q, o_h, o_tok


@triton.jit
def _empty_state(BM, BC, BD):
    """Online-softmax state of BM rows: running max, running sum, value accumulators of the two
    column blocks."""
    b_m = tl.full([BM], float("-inf"), dtype=tl.float32)
    b_l = tl.zeros([BM], dtype=tl.float32)
    b_acc = tl.zeros([BM, BC], dtype=tl.float32)
    b_acc_d = tl.zeros([BM, BD], dtype=tl.float32) if BD > 0 else b_acc
    return b_m, b_l, b_acc, b_acc_d


@triton.jit
def _tile_step(
    b_c, b_d, b_r, b_qa, b_qd, b_qr, o_s, m_s, pos, b_m, b_l, b_acc, b_acc_d, qk_scale, BD, MASKED, PRECISION
):
    """One tile of the online softmax (base 2). Returns (m, l, acc, acc_d). MASKED applies the
    causal and range mask (`masked_from`).

    The score products are separate dots, each scaled, then summed. Chained through the
    accumulator, Triton gives every dot that feeds another dot the layout with all warps along the
    rows; at 64 rows and 8 warps (MLA) both warpgroups then compute the same 64 rows, and the
    scores are converted through shared memory for the last product. Kept apart, every product
    splits the tile's keys over the warpgroups (MLA at DEC-A: 1120 -> 823 us at Q = 1). The scale
    goes on each product, not on the sum: Triton folds an unscaled `dot + dot` back into one
    accumulator chain (seen in the TTGIR)."""
    # [BM, BC] @ [BC, BS] (+ [BM, BD] @ [BD, BS]) + [BM, BR] @ [BR, BS] -> [BM, BS], scaled
    b_s = tl.dot(b_qa, tl.trans(b_c), input_precision=PRECISION) * qk_scale
    if BD > 0:
        b_s += tl.dot(b_qd, tl.trans(b_d), input_precision=PRECISION) * qk_scale
    b_s += tl.dot(b_qr, tl.trans(b_r), input_precision=PRECISION) * qk_scale
    if MASKED:
        b_s = tl.where((o_s[None, :] <= pos[:, None]) & m_s[None, :], b_s, float("-inf"))
    b_mn = tl.maximum(b_m, tl.max(b_s, 1))
    # A split may start past a row's causal limit: its max stays -inf, and -inf - -inf is NaN.
    b_mc = tl.where(b_mn == float("-inf"), 0.0, b_mn)
    b_p = tl.exp2(b_s - b_mc[:, None])
    b_rs = tl.exp2(b_m - b_mc)
    b_l = b_l * b_rs + tl.sum(b_p, 1)
    b_p = b_p.to(b_c.dtype)
    # [BM, BS] @ [BS, BC] -> [BM, BC], and the same for the second column block
    b_acc = tl.dot(b_p, b_c, b_acc * b_rs[:, None], input_precision=PRECISION)
    if BD > 0:
        b_acc_d = tl.dot(b_p, b_d, b_acc_d * b_rs[:, None], input_precision=PRECISION)
    return b_mn, b_l, b_acc, b_acc_d


@triton.jit
def _store(o, lse, b_acc, b_acc_d, b_m, b_l, m_m, o_tok, o_h, i_sp, n_splits, H, DC, BC, BD, SPLIT):
    o_row_out = o_tok * H + o_h  # row (b, q, h) of the output
    if SPLIT:
        # No visible key (b_l == 0): an empty partial, weight 2^-inf = 0 in the merge.
        b_seen = b_l > 0
        b_l = tl.where(b_seen, b_l, 1.0)
        b_inv = tl.where(b_seen, 1.0 / b_l, 0.0)
        b_lse = tl.where(b_seen, b_m + tl.log2(b_l), float("-inf"))
        p_o = o + ((o_row_out * n_splits + i_sp) * DC)[:, None]
        tl.store(lse + o_row_out * n_splits + i_sp, b_lse, mask=m_m)
    else:
        # Key 0 is visible to every row (seq_len >= Q): b_l > 0.
        b_inv = 1.0 / b_l
        p_o = o + (o_row_out * DC)[:, None]
    o_c = tl.arange(0, BC)
    tl.store(
        p_o + o_c[None, :],
        (b_acc * b_inv[:, None]).to(o.dtype.element_ty),
        mask=m_m[:, None] & (o_c < DC)[None, :],
    )
    if BD > 0:
        o_d = BC + tl.arange(0, BD)
        tl.store(
            p_o + o_d[None, :],
            (b_acc_d * b_inv[:, None]).to(o.dtype.element_ty),
            mask=m_m[:, None] & (o_d < DC)[None, :],
        )


@triton.jit
def _gathered_tile(c, r, block_table, i_b, i_g, i_s, end, max_pages, G, DC, DR, PS, BS, BC, BD, BR):
    """Tokens i_s .. i_s + BS - 1 up to `end`, each row through the block table: (C[:, :BC],
    C[:, BC:BC + BD], R) rows, the tokens' positions, and which of them are in range."""
    o_s = i_s + tl.arange(0, BS)
    m_s = o_s < end
    o_c = tl.arange(0, BC)
    o_r = tl.arange(0, BR)
    b_page = tl.load(block_table + i_b.to(tl.int64) * max_pages + o_s // PS, mask=m_s, other=0)
    o_row = b_page.to(tl.int64) * PS + o_s % PS  # physical token rows
    p_row = c + ((o_row * G + i_g) * DC)[:, None]
    b_c = tl.load(p_row + o_c[None, :], mask=m_s[:, None] & (o_c < DC)[None, :], other=0.0)
    if BD > 0:
        o_d = BC + tl.arange(0, BD)
        b_d = tl.load(p_row + o_d[None, :], mask=m_s[:, None] & (o_d < DC)[None, :], other=0.0)
    else:
        b_d = b_c
    p_r = r + o_row[:, None] * DR + o_r[None, :]
    b_r = tl.load(p_r, mask=m_s[:, None] & (o_r < DR)[None, :], other=0.0)
    return b_c, b_d, b_r, o_s, m_s


@triton.jit
def paged_decode_kernel(
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
    BC: tl.constexpr,  # cache columns [0, BC)
    BD: tl.constexpr,  # cache columns [BC, BC + BD); 0: none (Dc <= BC)
    BR: tl.constexpr,
    SPLIT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_b, i_g, i_m, i_sp = program_coords(Q, H, G, BM)
    qk_scale = scale * 1.4426950408889634  # base 2: exp(x) = exp2(x * log2(e))
    b_qa, b_qd, b_qr, m_m, o_q, o_h, o_tok = _queries(
        q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BC, BD, BR
    )
    seq_len, start, end = key_range(seq_lens, i_b, i_sp, chunk, SPLIT)
    # Position of each row's query; padding rows (m >= Q*HG) get >= seq_len: every key is visible.
    pos = seq_len - Q + o_q
    b_m, b_l, b_acc, b_acc_d = _empty_state(BM, BC, BD)
    # Only the tiles from masked_from on are masked, as in the TMA kernel (MLA at DEC-A, 64-token
    # tiles: 1095 us against 1163 with every tile masked).
    mask_at = masked_from(end, seq_len, Q)
    for i_s in range(start, end, BS):
        b_c, b_d, b_r, o_s, m_s = _gathered_tile(
            c, r, block_table, i_b, i_g, i_s, end, max_pages, G, DC, DR, PS, BS, BC, BD, BR
        )
        b_m, b_l, b_acc, b_acc_d = _tile_step(
            b_c,
            b_d,
            b_r,
            b_qa,
            b_qd,
            b_qr,
            o_s,
            m_s,
            pos,
            b_m,
            b_l,
            b_acc,
            b_acc_d,
            qk_scale,
            BD,
            i_s + BS > mask_at,
            PRECISION,
        )
    _store(o, lse, b_acc, b_acc_d, b_m, b_l, m_m, o_tok, o_h, i_sp, n_splits, H, DC, BC, BD, SPLIT)


@triton.jit
def _page_tile(desc_c, desc_d, desc_r, row, i_g, DC, BC, BD):
    """The tile of tokens from cache row `row` on, inside one page: (C[:, :BC], C[:, BC:BC + BD],
    R) rows."""
    b_c = desc_c.load([row, i_g * DC])
    if BD > 0:
        b_d = desc_d.load([row, i_g * DC + BC])
    else:
        b_d = b_c
    return b_c, b_d, desc_r.load([row, 0])


@triton.jit
def paged_decode_tma_kernel(
    q_a,
    q_r,
    desc_c,  # cache as (pages x page_size, G x Dc), blocks (BS, BC)
    desc_d,  # the same, blocks (BS, BD); unread when BD == 0
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
    BC: tl.constexpr,
    BD: tl.constexpr,
    BR: tl.constexpr,
    SPLIT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_b, i_g, i_m, i_sp = program_coords(Q, H, G, BM)
    qk_scale = scale * 1.4426950408889634
    b_qa, b_qd, b_qr, m_m, o_q, o_h, o_tok = _queries(
        q_a, q_r, i_b, i_g, i_m, s_qa_t, s_qa_h, s_qr_t, s_qr_h, Q, H, G, KA, DR, BM, BC, BD, BR
    )
    # chunk is a multiple of BS, so split ranges start on a tile, inside a page.
    seq_len, start, end = key_range(seq_lens, i_b, i_sp, chunk, SPLIT)
    end_full = start + tl.maximum(end - start, 0) // BS * BS
    pos = seq_len - Q + o_q
    b_m, b_l, b_acc, b_acc_d = _empty_state(BM, BC, BD)
    o_t = tl.arange(0, BS)
    m_full = o_t < BS
    mask_at = masked_from(end, seq_len, Q)
    w_first, w_end = windows(start, end_full, PS)
    for i_w in range(w_first, w_end):
        b_pages = page_window(block_table, i_b, i_w, max_pages)
        k_first, k_end = window_keys(start, end_full, i_w, PS)
        for i_s in range(k_first, k_end, BS):
            row = window_row(b_pages, i_w, i_s, PS)
            b_c, b_d, b_r = _page_tile(desc_c, desc_d, desc_r, row, i_g, DC, BC, BD)
            b_m, b_l, b_acc, b_acc_d = _tile_step(
                b_c,
                b_d,
                b_r,
                b_qa,
                b_qd,
                b_qr,
                i_s + o_t,
                m_full,
                pos,
                b_m,
                b_l,
                b_acc,
                b_acc_d,
                qk_scale,
                BD,
                i_s + BS > mask_at,
                PRECISION,
            )
    if end_full < end:
        row = page_row(block_table, i_b, end_full, max_pages, PS)
        b_c, b_d, b_r = _page_tile(desc_c, desc_d, desc_r, row, i_g, DC, BC, BD)
        o_s = end_full + o_t
        m_s = o_s < end
        b_c = tl.where(m_s[:, None], b_c, 0.0)
        b_d = tl.where(m_s[:, None], b_d, 0.0)
        b_r = tl.where(m_s[:, None], b_r, 0.0)
        b_m, b_l, b_acc, b_acc_d = _tile_step(
            b_c,
            b_d,
            b_r,
            b_qa,
            b_qd,
            b_qr,
            o_s,
            m_s,
            pos,
            b_m,
            b_l,
            b_acc,
            b_acc_d,
            qk_scale,
            BD,
            True,
            PRECISION,
        )
    _store(o, lse, b_acc, b_acc_d, b_m, b_l, m_m, o_tok, o_h, i_sp, n_splits, H, DC, BC, BD, SPLIT)
