"""Paged decode attention (GTA, GLA) against the plain-PyTorch reference, float32 in the CPU
interpreter. Caches hold shuffled physical pages, spare pages and unused slots filled with NaN (a
kernel that reads past a sequence or through an unused block-table entry fails), NaN-poisoned
outputs, ragged lengths (Q, a non-multiple of the page size, a multiple, several tiles). The
interpreter config splits every sequence in two (split-K) through the public functions; the launcher's
splits override covers S = 1, uneven and empty splits."""

from __future__ import annotations

import math

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.attention import attention_naive
from redpajama.kernels.decode import gla_decode, gla_decode_naive, gta_decode, gta_decode_naive
from redpajama.kernels.decode.naive import gather_pages
from redpajama.kernels.decode.paged import gla_operands, gta_operands, paged_decode_fwd

PAGE = 8
HEADS = ((1, 1), (1, 4), (2, 1), (2, 4))  # (G, H/G)


def _lengths(nq: int) -> list[int]:
    # Q itself (1 when Q == 1), a non-multiple of the page size, a multiple, one over 2 tiles of 16.
    return [nq, 13, 2 * PAGE, 37]


def _paged(lengths, page_size, row_shapes, device, seed):
    """Random caches (num_pages, page_size, *row) for each row shape, shuffled physical pages and a
    block table (B, max_pages) whose unused entries are -1; spare pages and the slots past each
    sequence's end hold NaN."""
    counts = [-(-n // page_size) for n in lengths]
    max_pages, used = max(counts) + 1, sum(counts)
    num_pages = used + 3  # spare pages nobody owns
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_pages, generator=gen)[:used]
    table = torch.full((len(lengths), max_pages), -1, dtype=torch.int32)
    start = 0
    for b, c in enumerate(counts):
        table[b, :c] = perm[start : start + c].to(torch.int32)
        start += c
    caches = []
    for i, row in enumerate(row_shapes):
        cache = torch.full((num_pages, page_size, *row), float("nan"))
        values = unit_randn(num_pages, page_size, *row, seed=seed + 1 + i)
        for b, n in enumerate(lengths):
            for j in range(counts[b]):
                valid = min(page_size, n - j * page_size)
                cache[table[b, j], :valid] = values[table[b, j], :valid]
        caches.append(cache.to(device))
    return caches, table.to(device), torch.tensor(lengths, dtype=torch.int32, device=device)


def _assert_close(ref, out):
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert not out.isnan().any(), "NaN: an output left unwritten or a NaN cache slot read"
    assert not ref.isnan().any(), "the reference read a NaN slot: broken test setup"
    err = rel_rms(ref, out)
    assert err < 1e-5, f"relative RMS {err}"


@pytest.mark.parametrize("nq", (1, 2, 3))
@pytest.mark.parametrize("g, hg", HEADS, ids=[f"G{g}-HG{hg}" for g, hg in HEADS])
def test_gta_matches_naive(nq, g, hg, device):
    d = 16
    lengths = _lengths(nq)
    (kv, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, d), (d // 2,)], device, seed=nq * 10 + g)
    q = unit_randn(len(lengths), nq, g * hg, d, device=device, seed=7)
    ref = gta_decode_naive(q, kv, k_rope, table, seq_lens)
    with poisoned_allocations():
        out = gta_decode(q, kv, k_rope, table, seq_lens)
    _assert_close(ref, out)


@pytest.mark.parametrize("nq", (1, 2, 3))
@pytest.mark.parametrize("g, hg", HEADS, ids=[f"G{g}-HG{hg}" for g, hg in HEADS])
def test_gla_matches_naive(nq, g, hg, device):
    # Dl = 24, Dr = 8: neither a power of two nor equal (masked columns of the 32/16-wide tiles).
    dl, dr = 24, 8
    lengths = _lengths(nq)
    (latent, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, dl), (dr,)], device, seed=nq * 10 + g + 5)
    b, h = len(lengths), g * hg
    q_latent = unit_randn(b, nq, h, dl, device=device, seed=8)
    q_rope = unit_randn(b, nq, h, dr, device=device, seed=9)
    ref = gla_decode_naive(q_latent, q_rope, latent, k_rope, table, seq_lens, scale=0.3)
    with poisoned_allocations():
        out = gla_decode(q_latent, q_rope, latent, k_rope, table, seq_lens, scale=0.3)
    _assert_close(ref, out)


@pytest.mark.parametrize("page_size", (1, 5))
def test_odd_page_sizes(page_size, device):
    # Page size 1 (every token its own page) and 5 (pages straddle the 16-token tiles). 37 tokens:
    # a capacity of >= 2 tiles a split, so the two splits' boundary (key 32) falls inside a page of 5.
    lengths, g, hg, d = [2, 11, 37], 2, 2, 16
    (kv, k_rope), table, seq_lens = _paged(lengths, page_size, [(g, d), (d // 2,)], device, seed=3)
    q = unit_randn(len(lengths), 2, g * hg, d, device=device, seed=4)
    ref = gta_decode_naive(q, kv, k_rope, table, seq_lens)
    with poisoned_allocations():
        out = gta_decode(q, kv, k_rope, table, seq_lens)
    _assert_close(ref, out)


# Capacity 48 (6 pages of 8), chunks of 16 for S = 3 and 7: S = 7 leaves 4 splits past every
# sequence; with Q = 2, sequence 17's split 1 holds key 16 only, past query 0's causal limit (15).
SPLIT_LENGTHS = [2, 17, 37]


@pytest.mark.parametrize("splits", (1, 2, 3, 7))
@pytest.mark.parametrize("nq", (1, 2))
def test_gta_splits(nq, splits, device):
    g, hg, d = 2, 3, 16
    lengths = [max(nq, n) for n in SPLIT_LENGTHS]
    (kv, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, d), (d // 2,)], device, seed=31 + nq)
    q = unit_randn(len(lengths), nq, g * hg, d, device=device, seed=32)
    ref = gta_decode_naive(q, kv, k_rope, table, seq_lens, scale=0.25)
    with poisoned_allocations():
        q_a, q_r, scale, ka = gta_operands(q, 0.25)
        out = paged_decode_fwd(q_a, q_r, kv, k_rope, table, seq_lens, scale, ka, splits=splits)
    _assert_close(ref, out)


@pytest.mark.parametrize("splits", (1, 2, 3, 7))
@pytest.mark.parametrize("nq", (1, 2))
def test_gla_splits(nq, splits, device):
    g, hg, dl, dr = 1, 5, 24, 8
    lengths = [max(nq, n) for n in SPLIT_LENGTHS]
    (latent, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, dl), (dr,)], device, seed=41 + nq)
    b, h = len(lengths), g * hg
    q_latent = unit_randn(b, nq, h, dl, device=device, seed=42)
    q_rope = unit_randn(b, nq, h, dr, device=device, seed=43)
    ref = gla_decode_naive(q_latent, q_rope, latent, k_rope, table, seq_lens, scale=0.3)
    with poisoned_allocations():
        q_a, q_r, scale, ka = gla_operands(q_latent, q_rope, 0.3)
        out = paged_decode_fwd(q_a, q_r, latent, k_rope, table, seq_lens, scale, ka, splits=splits)
    _assert_close(ref, out)


def test_tile_override(device):
    # A config other than the launcher's (the benchmark's --sweep): 32-token tiles, 2-row programs.
    from redpajama.kernels.decode.paged import Config, config_for

    g, hg, d = 2, 3, 16
    lengths = [2, 13, 37]  # >= Q = 2
    (kv, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, d), (d // 2,)], device, seed=61)
    q = unit_randn(len(lengths), 2, g * hg, d, device=device, seed=62)
    base = config_for(torch.device(device), d, 2 * hg)
    cfg = Config(2 * base.bs, base.warps, base.stages, 2 if device == "cpu" else 16, base.min_programs)
    ref = gta_decode_naive(q, kv, k_rope, table, seq_lens, scale=0.25)
    with poisoned_allocations():
        q_a, q_r, scale, ka = gta_operands(q, 0.25)
        out = paged_decode_fwd(q_a, q_r, kv, k_rope, table, seq_lens, scale, ka, cfg=cfg)
    _assert_close(ref, out)


def _grouped_problem(variant: str, lengths, page: int, nq: int, device, seed: int):
    """A paged GTA ("gta-D": tied KV of D, RoPE D/2) or GLA ("gla-D": latent D, RoPE D/2) problem with
    g = 2 groups of 3 heads: (cache, rope, table, seq_lens), the reference output, the launcher's
    operands (q_a, q_r, scale, ka)."""
    kind, d = variant.split("-")
    d, g, h, b = int(d), 2, 6, len(lengths)
    (cache, k_rope), table, seq_lens = _paged(lengths, page, [(g, d), (d // 2,)], device, seed=seed)
    if kind == "gla":
        q_latent = unit_randn(b, nq, h, d, device=device, seed=seed + 1)
        q_rope = unit_randn(b, nq, h, d // 2, device=device, seed=seed + 2)
        ref = gla_decode_naive(q_latent, q_rope, cache, k_rope, table, seq_lens, scale=0.3)
        return (cache, k_rope, table, seq_lens), ref, gla_operands(q_latent, q_rope, 0.3)
    q = unit_randn(b, nq, h, d, device=device, seed=seed + 1)
    ref = gta_decode_naive(q, cache, k_rope, table, seq_lens, scale=0.25)
    return (cache, k_rope, table, seq_lens), ref, gta_operands(q, 0.25)


@pytest.mark.parametrize("splits", (None, 1, 3))
@pytest.mark.parametrize("nq", (1, 2, 3))
@pytest.mark.parametrize("variant", ("gta-16", "gta-24", "gla-24"))
def test_keys_major(variant, nq, splits, device):
    # The transposed kernel (keys_major.py) through the launcher: GTA's two column ranges [0, Ka)
    # and [Ka, D) (D 24: 12-wide ranges in 16-wide tiles), GLA's one; split and unsplit.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for

    lengths = [max(nq, n) for n in SPLIT_LENGTHS]
    paged, ref, (q_a, q_r, scale, ka) = _grouped_problem(variant, lengths, PAGE, nq, device, seed=71 + 3 * nq)
    cfg = replace(config_for(torch.device(device), paged[0].shape[3], nq * 3), keys_major=True)
    with poisoned_allocations():
        out = paged_decode_fwd(q_a, q_r, *paged, scale, ka, splits=splits, cfg=cfg)
    _assert_close(ref, out)


@pytest.mark.parametrize("splits", (None, 1, 3, 4))
@pytest.mark.parametrize("nq", (1, 2, 3))
@pytest.mark.parametrize("variant", ("gta-32", "gta-24", "gla-32"))
@pytest.mark.parametrize("keys_major", (True, False), ids=("keys-major", "row-major"))
def test_tma(keys_major, variant, nq, splits, device):
    # The TMA variants of both kernels: tiles as rectangles inside 16-token pages (two tiles a page
    # in the interpreter, so a tile's offset in its page counts). Lengths end mid-page with NaN in
    # the page's stale slots, and mid-tile inside a split; 4 splits of 24 keys (CPU) start ranges
    # mid-page. GTA-24 reads padding columns: the
    # transposed kernel's 12-wide ranges in 16-wide blocks, the row-major kernel's 24 in 32 (into
    # the next group, or past the row for the last); GTA-32 and GLA: exact widths.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for, tma_fits

    lengths = [max(nq, n) for n in (2, 17, 37, 64)]
    paged, ref, (q_a, q_r, scale, ka) = _grouped_problem(variant, lengths, 16, nq, device, seed=81 + 3 * nq)
    bs = 8 if device == "cpu" else 16
    cfg = replace(
        config_for(torch.device(device), paged[0].shape[3], nq * 3), bs=bs, keys_major=keys_major, tma=True
    )
    assert tma_fits(paged[0], paged[1], bs, (32, 16))
    with poisoned_allocations():
        out = paged_decode_fwd(q_a, q_r, *paged, scale, ka, splits=splits, cfg=cfg)
    _assert_close(ref, out)


@pytest.mark.parametrize("splits", (1, 3))
@pytest.mark.parametrize("keys_major", (True, False), ids=("keys-major", "row-major"))
def test_tma_block_table_windows(keys_major, splits, device):
    # The TMA kernels read the block table 32 pages (keys_major.WINDOW) at a time: a sequence of 34
    # pages crosses a window, and 3 splits start ranges mid-window (and, in the interpreter's
    # 8-token tiles, mid-page).
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for

    lengths = [16 * 33 + 11, 5]
    paged, ref, (q_a, q_r, scale, ka) = _grouped_problem("gla-32", lengths, 16, 1, device, seed=97)
    bs = 8 if device == "cpu" else 16
    cfg = replace(config_for(torch.device(device), 32, 3), bs=bs, keys_major=keys_major, tma=True)
    with poisoned_allocations():
        out = paged_decode_fwd(q_a, q_r, *paged, scale, ka, splits=splits, cfg=cfg)
    _assert_close(ref, out)


@pytest.mark.parametrize("splits", (1, 3))
@pytest.mark.parametrize("tma", (False, True), ids=("gathered", "tma"))
@pytest.mark.parametrize("variant", ("gla-280", "gla-512"))
def test_wide_cache_column_blocks(variant, tma, splits, device):
    # A cache wider than a TMA box (256): the row-major kernels read it as two column blocks, each
    # with its queries and value accumulator. GLA-512 is MLA's latent (blocks of 256 and 256);
    # GLA-280 masks the second block's 32 columns past 280 (and its 140-wide RoPE key, 256 wide).
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for, tma_fits

    d = int(variant.split("-")[1])
    lengths = [2, 17, 37, 64]
    paged, ref, (q_a, q_r, scale, ka) = _grouped_problem(variant, lengths, 16, 2, device, seed=101)
    bs = 8 if device == "cpu" else 16
    cfg = replace(config_for(torch.device(device), d, 6), bs=bs, keys_major=False, tma=tma)
    assert tma_fits(paged[0], paged[1], bs, (256, 256, 256)) and not tma_fits(paged[0], paged[1], bs, (512,))
    with poisoned_allocations():
        out = paged_decode_fwd(q_a, q_r, *paged, scale, ka, splits=splits, cfg=cfg)
    _assert_close(ref, out)


def test_tma_config_gathers_where_pages_split_tiles(device):
    # Config.tma over pages of 8 with 16-token tiles: tma_fits is False, the launcher gathers instead.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for, tma_fits

    paged, ref, (q_a, q_r, scale, ka) = _grouped_problem("gta-32", [2, 17, 37], PAGE, 1, device, seed=91)
    cfg = replace(config_for(torch.device(device), 32, 3), bs=16, keys_major=True, tma=True)
    assert not tma_fits(paged[0], paged[1], cfg.bs, (16, 16, 16))
    with poisoned_allocations():
        out = paged_decode_fwd(q_a, q_r, *paged, scale, ka, cfg=cfg)
    _assert_close(ref, out)


def test_row_major_blocks():
    # Column blocks of at most a TMA box (256): one where the row fits, two for MLA's 512.
    from redpajama.kernels.decode.paged import row_major_blocks

    assert row_major_blocks(8) == (16, 0) and row_major_blocks(24) == (32, 0)
    assert row_major_blocks(256) == (256, 0) and row_major_blocks(512) == (256, 256)
    assert row_major_blocks(280) == (256, 32) and row_major_blocks(576) == (256, 512)


def test_tma_fits():
    from redpajama.kernels.decode.paged import tma_fits

    cache, rope = torch.zeros(4, 16, 2, 32), torch.zeros(4, 16, 16)
    assert tma_fits(cache, rope, 16, (32, 16)) and tma_fits(cache, rope, 8, (32, 16))
    assert not tma_fits(cache, rope, 32, (32, 16))  # a tile would span two pages
    assert not tma_fits(torch.zeros(4, 16, 1, 3), rope, 16, (16, 16))  # 12-byte rows
    assert tma_fits(cache, rope, 16, (256, 16)) and not tma_fits(cache, rope, 16, (512, 16))  # boxes <= 256


def test_splits_argument_error(device):
    (kv, k_rope), table, seq_lens = _paged([4, 9], PAGE, [(1, 16), (8,)], device, seed=51)
    q = unit_randn(2, 1, 2, 16, device=device, seed=52)
    q_a, q_r, scale, ka = gta_operands(q)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=f"splits must be a positive int or None, got {bad!r}"):
            paged_decode_fwd(q_a, q_r, kv, k_rope, table, seq_lens, scale, ka, splits=bad)


def test_gta_naive_is_the_training_layer_attention():
    # The reference's definition against causal attention over the whole sequence with the GTA key
    # [kv[:D/2], k_rope] and value kv (how training/model/attention.py builds them): the last Q
    # query rows of the full attention are the decode outputs.
    length, nq, g, hg, d = 19, 3, 2, 2, 16
    (kv, k_rope), table, seq_lens = _paged([length], 4, [(g, d), (d // 2,)], "cpu", seed=11)
    q_full = unit_randn(1, length, g * hg, d, seed=12)
    keys = gather_pages(kv, table[0], length)  # (T, G, D)
    rope = gather_pages(k_rope, table[0], length)  # (T, D/2)
    k = torch.cat([keys[..., : d // 2], rope[:, None].expand(length, g, d // 2)], dim=-1)
    full = attention_naive(q_full, k[None], keys[None])
    out = gta_decode_naive(q_full[:, -nq:], kv, k_rope, table, seq_lens)
    assert rel_rms(full[:, -nq:], out) < 1e-6


def test_scale_default_and_argument_errors(device):
    lengths, g, d = [4, 9], 2, 16
    (kv, k_rope), table, seq_lens = _paged(lengths, PAGE, [(g, d), (d // 2,)], device, seed=21)
    q = unit_randn(2, 2, 4, d, device=device, seed=22)
    out = gta_decode(q, kv, k_rope, table, seq_lens)
    _assert_close(gta_decode_naive(q, kv, k_rope, table, seq_lens, scale=1 / math.sqrt(d)), out)
    with pytest.raises(ValueError, match="H=3 must be a multiple"):
        gta_decode(q[:, :, :3], kv, k_rope, table, seq_lens)
    with pytest.raises(ValueError, match="D/2"):
        gta_decode(q, kv, k_rope[..., :4].contiguous(), table, seq_lens)
    with pytest.raises(ValueError, match="contiguous"):
        gta_decode(q, kv.transpose(2, 3).contiguous().transpose(2, 3), k_rope, table, seq_lens)
    with pytest.raises(TypeError, match="int32"):
        gta_decode(q, kv, k_rope, table.long(), seq_lens)
    with pytest.raises(TypeError, match="one dtype"):
        gta_decode(q, kv.half(), k_rope, table, seq_lens)
    with pytest.raises(ValueError, match="Q=2"):
        gta_decode(q, kv, k_rope, table, torch.tensor([1, 9], dtype=torch.int32, device=device))
    with pytest.raises(ValueError, match="max_pages\\*page_size=24"):
        gta_decode(q, kv, k_rope, table, torch.tensor([4, 25], dtype=torch.int32, device=device))
    bad = table.clone()
    bad[1, 1] = kv.shape[0]
    with pytest.raises(ValueError, match="block_table row 1 names pages outside"):
        gta_decode(q, kv, k_rope, bad, seq_lens)
    with pytest.raises(ValueError, match="Dl=24"):
        gla_decode(q.new_zeros(2, 2, 4, 24), q.new_zeros(2, 2, 4, 8), kv, k_rope, table, seq_lens)


def _hopper_gluon() -> bool:
    import triton

    from redpajama.kernels.decode.paged import _GLUON_API

    hopper = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9
    return hopper and triton.__version__.split(".")[:2] == _GLUON_API


# Where the launcher takes the Gluon kernel: a Hopper GPU with the Triton its Gluon is written for.
HOPPER_GLUON = _hopper_gluon()


def _gluon_beside_triton(ref, operands, splits, cfg_gluon, cfg_triton):
    # The launcher on the same bf16 operands with a config that takes a Gluon kernel and one that
    # takes a Triton kernel, outputs poisoned before each call: the Gluon output is NaN-free,
    # within 1e-2 relative RMS of the float32 reference and no worse than the Triton kernel's.
    outs = []
    for cfg in (cfg_gluon, cfg_triton):
        with poisoned_allocations():
            outs.append(paged_decode_fwd(*operands, splits=splits, cfg=cfg))
    assert not outs[0].isnan().any()
    err, err_triton = rel_rms(ref, outs[0].float()), rel_rms(ref, outs[1].float())
    assert err < 1e-2 and err < 1.5 * err_triton + 1e-3, (err, err_triton)


@pytest.mark.skipif(
    not HOPPER_GLUON, reason="the Gluon kernel runs on Hopper GPUs with Triton 3.6 (no interpreter)"
)
@pytest.mark.parametrize("splits", (None, 1, 3))
@pytest.mark.parametrize(
    "nq, hg", ((1, 64), (2, 32), (2, 64), (3, 64)), ids=("64rows", "Q2-64rows", "128rows", "2blocks")
)
@pytest.mark.parametrize("d", (256, 192, 128))
def test_warp_specialized_kernel(d, nq, hg, splits):
    # The warp-specialized Gluon kernel (row_major_ws.py) in bf16 against the float32 reference,
    # next to the Triton TMA kernel it mirrors on the same bf16 inputs. Lengths end mid-tile (NaN
    # in the stale slots the last tile loads, which both row partitions zero), equal Q, and span
    # many tiles, so each slot's barriers go through several phases; 3 splits give ranges that are
    # empty or start mid-sequence. Q = 3 at 64 heads a group is 192 rows: two blocks of 128, the
    # second half padding. D 192: 256-wide tiles reading the next group's columns, 128-wide RoPE
    # boxes over 96 columns.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import Config, ws_fits

    g, page = 2, 64
    lengths = [nq, 63, 64, 200, 1000]
    (cache, k_rope), table, seq_lens = _paged(lengths, page, [(g, d), (d // 2,)], "cuda", seed=131)
    q_latent = unit_randn(len(lengths), nq, g * hg, d, device="cuda", seed=132)
    q_rope = unit_randn(len(lengths), nq, g * hg, d // 2, device="cuda", seed=133)
    ref = gla_decode_naive(q_latent, q_rope, cache, k_rope, table, seq_lens, scale=0.1)
    bf = [t.to(torch.bfloat16) for t in (q_latent, q_rope, cache, k_rope)]
    q_a, q_r, scale, ka = gla_operands(bf[0], bf[1], 0.1)
    bm = min(1 << (nq * hg - 1).bit_length(), 128)
    # 64-token tiles at 64 rows (as GLA-2 runs them); 32 at 128 rows, whose 128-wide RoPE keys
    # would not fit three buffers of 64.
    cfg = Config(64 if bm == 64 else 32, bm // 16, 3, 128, 132, tma=True, warp_specialized=True)
    assert ws_fits(cfg, bf[2], bm, d)
    operands = (q_a, q_r, bf[2], bf[3], table, seq_lens, scale, ka)
    _gluon_beside_triton(ref, operands, splits, cfg, replace(cfg, warp_specialized=False))


@pytest.mark.skipif(
    not HOPPER_GLUON, reason="the Gluon kernel runs on Hopper GPUs with Triton 3.6 (no interpreter)"
)
@pytest.mark.parametrize("bs, buffers", ((32, 4), (64, 2)), ids=("32-token-tiles", "64-token-tiles"))
@pytest.mark.parametrize("splits", (1, 3))
@pytest.mark.parametrize(
    "g, nq, hg", ((1, 1, 64), (1, 2, 64), (2, 1, 40)), ids=("MLA", "MLA-Q2-2blocks", "2groups-40rows")
)
def test_wide_latent_ws_kernel(g, nq, hg, splits, bs, buffers):
    # The Gluon kernel for 512-wide latents (wide_latent_ws.py) in bf16 against the float32
    # reference, next to the Triton TMA kernel on the same inputs. Lengths end mid-tile over NaN
    # stale slots (warpgroup 0 zeroes both halves), and span many tiles, so the tile slots' and
    # P buffers' barriers go through several phases; 3 splits give empty ranges and ranges that
    # start mid-sequence. Q = 2 at 64 heads: two row blocks; two groups of 40 heads: the second
    # group's columns, and rows past the heads masked. 64-token tiles have one P buffer (shared
    # memory), 32-token tiles two.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import Config, ws_fits

    d, page = 512, 64
    lengths = [nq, 63, 64, 200, 1000]
    (cache, k_rope), table, seq_lens = _paged(lengths, page, [(g, d), (64,)], "cuda", seed=141)
    q_latent = unit_randn(len(lengths), nq, g * hg, d, device="cuda", seed=142)
    q_rope = unit_randn(len(lengths), nq, g * hg, 64, device="cuda", seed=143)
    ref = gla_decode_naive(q_latent, q_rope, cache, k_rope, table, seq_lens, scale=0.05)
    bf = [t.to(torch.bfloat16) for t in (q_latent, q_rope, cache, k_rope)]
    q_a, q_r, scale, ka = gla_operands(bf[0], bf[1], 0.05)
    cfg = Config(bs, 4, buffers, 64, 132, tma=True, warp_specialized=True)
    assert ws_fits(cfg, bf[2], 64, d)
    operands = (q_a, q_r, bf[2], bf[3], table, seq_lens, scale, ka)
    _gluon_beside_triton(ref, operands, splits, cfg, replace(cfg, warp_specialized=False, warps=8))


@pytest.mark.skipif(
    not HOPPER_GLUON, reason="the Gluon kernel runs on Hopper GPUs with Triton 3.6 (no interpreter)"
)
@pytest.mark.parametrize("splits", (None, 1, 3))
@pytest.mark.parametrize(
    "g, nq, hg", ((8, 2, 16), (2, 2, 16), (4, 3, 8)), ids=("GTA-8", "2groups", "Q3-48rows")
)
def test_paired_groups_ws_kernel(g, nq, hg, splits):
    # GTA's groups by twos through the Gluon kernel (row_major_ws.py, GP = 2) in bf16 against the
    # float32 reference, next to the Triton keys-major kernel on the same inputs. Each row must
    # score against its own group's key columns only and keep its own group's half of the values;
    # 8 groups check the pairs' column offsets, Q = 3 at 8 heads a group gives 48 rows (the rest of
    # the warpgroup masked). Lengths end mid-tile over NaN slots; 3 splits give empty ranges.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for, pairs_fit

    d, page = 128, 64
    lengths = [nq, 63, 64, 200, 1000]
    (kv, k_rope), table, seq_lens = _paged(lengths, page, [(g, d), (d // 2,)], "cuda", seed=151)
    q = unit_randn(len(lengths), nq, g * hg, d, device="cuda", seed=152)
    ref = gta_decode_naive(q, kv, k_rope, table, seq_lens)
    bf = [t.to(torch.bfloat16) for t in (q, kv, k_rope)]
    q_a, q_r, scale, ka = gta_operands(bf[0])
    cfg = config_for(torch.device("cuda"), d, nq * hg)
    assert cfg.pair_groups and pairs_fit(cfg, bf[1], bf[2], ka, nq * hg, d // 2)
    operands = (q_a, q_r, bf[1], bf[2], table, seq_lens, scale, ka)
    _gluon_beside_triton(ref, operands, splits, cfg, replace(cfg, pair_groups=False))


@pytest.mark.skipif(
    not HOPPER_GLUON, reason="the Gluon kernel runs on Hopper GPUs with Triton 3.6 (no interpreter)"
)
@pytest.mark.parametrize("splits", (None, 3))
@pytest.mark.parametrize(
    "variant, nq",
    (("GLA", 1), ("GLA", 2), ("GTA", 2), ("MLA", 2)),
    ids=("64rows", "128rows", "pairs", "MLA-wide"),
)
def test_ws_kernel_rescales_when_scores_jump(variant, nq, splits):
    # The Gluon kernels move a row's reference maximum only where a tile passes it by more than
    # RESCALE_SLACK, and rescale a warpgroup's accumulator only on tiles where some row moved
    # (wide_latent_ws.py: warpgroup 1 where a factor it is handed is below 1).
    # Random scores hardly ever pass the first tiles' maxima by that much, so here the keys of
    # page 10 (keys 640-703) are 5x the others in every sequence that reaches them: every row's
    # maximum jumps far past the slack after ten tiles of accumulation (with 3 splits, inside a
    # range or at its first tile), and the accumulator must be rescaled there, by tiny factors.
    # GLA's RoPE keys are 128 wide here: at 128 rows the launcher gives the kernel 2 tile buffers
    # of 64 tokens instead of 3 (`ws_buffers`), and the Triton kernel beside it gets 2 stages.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import config_for

    g, hg, d, dr = {"GLA": (2, 64, 256, 128), "GTA": (8, 16, 128, 64), "MLA": (1, 64, 512, 64)}[variant]
    page, lengths = 64, [nq, 700, 1000, 1500]
    (cache, k_rope), table, seq_lens = _paged(lengths, page, [(g, d), (dr,)], "cuda", seed=161)
    for b, n in enumerate(lengths):
        if n > 640:
            cache[table[b, 10]] *= 5
            k_rope[table[b, 10]] *= 5
    if variant in ("GLA", "MLA"):
        q_latent = unit_randn(len(lengths), nq, g * hg, d, device="cuda", seed=162)
        q_rope = unit_randn(len(lengths), nq, g * hg, dr, device="cuda", seed=163)
        ref = gla_decode_naive(q_latent, q_rope, cache, k_rope, table, seq_lens, scale=0.1)
        bf = [t.to(torch.bfloat16) for t in (q_latent, q_rope, cache, k_rope)]
        q_a, q_r, scale, ka = gla_operands(bf[0], bf[1], 0.1)
        cfg = config_for(torch.device("cuda"), d, nq * hg)
        assert cfg.warp_specialized
        if variant == "GLA":
            triton_cfg = replace(cfg, warp_specialized=False, stages=2)
        else:  # MLA's Triton kernel runs its 64-row blocks at 8 warps (config_for)
            triton_cfg = replace(cfg, warp_specialized=False, warps=8)
    else:
        q = unit_randn(len(lengths), nq, g * hg, d, device="cuda", seed=162)
        ref = gta_decode_naive(q, cache, k_rope, table, seq_lens)
        bf = [t.to(torch.bfloat16) for t in (q, q, cache, k_rope)]
        q_a, q_r, scale, ka = gta_operands(bf[0])
        cfg = config_for(torch.device("cuda"), d, nq * hg)
        assert cfg.pair_groups
        triton_cfg = replace(cfg, pair_groups=False)
    operands = (q_a, q_r, bf[2], bf[3], table, seq_lens, scale, ka)
    _gluon_beside_triton(ref, operands, splits, cfg, triton_cfg)


def test_pairs_fit_rules(device):
    # Where the launcher serves GTA's groups by twos: only where asked, on a Hopper GPU with Triton
    # 3.6, for 16-bit caches of an even number of groups of Dc 128 with Ka 64, and 17-32 rows a
    # group (two groups in one warpgroup's 64).
    from dataclasses import replace

    from redpajama.kernels.decode.paged import Config, pairs_fit

    cfg = Config(64, 4, 3, 128, 132, keys_major=True, tma=True, pair_groups=True)
    kv = torch.zeros(2, 64, 8, 128, dtype=torch.bfloat16, device=device)
    rope = torch.zeros(2, 64, 64, dtype=torch.bfloat16, device=device)
    assert pairs_fit(cfg, kv, rope, 64, 32, 64) == HOPPER_GLUON
    assert pairs_fit(cfg, kv, rope, 64, 24, 64) == HOPPER_GLUON
    assert not pairs_fit(replace(cfg, pair_groups=False), kv, rope, 64, 32, 64)
    assert not pairs_fit(cfg, kv, rope, 64, 16, 64)  # Q = 1: two groups fill half a warpgroup
    assert not pairs_fit(cfg, kv, rope, 64, 40, 64)
    assert not pairs_fit(cfg, kv[:, :, :3], rope, 64, 32, 64)  # an odd number of groups
    assert not pairs_fit(cfg, kv[..., :64].contiguous(), rope, 32, 32, 64)
    assert not pairs_fit(cfg, kv.float(), rope.float(), 64, 32, 64)


def test_ws_buffers_fit_shared_memory():
    # row_major_ws.py's tile buffers: the config's stages where the queries and tiles fit a Hopper
    # CTA's 227 KB, fewer where they would not, and under 2 (the kernel cannot run) past that.
    from redpajama.kernels.decode.paged import Config, ws_buffers

    cfg = Config(64, 8, 3, 128, 132, tma=True, warp_specialized=True)
    assert ws_buffers(cfg, 128, 256, 64, 2) == 3  # GLA-2 at Q = 2: 80 + 3 x 40 KB
    assert ws_buffers(cfg, 128, 256, 128, 2) == 2  # RoPE keys of 128: 96 + 3 x 48 KB is 240 KB
    assert ws_buffers(cfg, 64, 256, 64, 2) == 3  # GTA pairs / GLA-2 at Q = 1
    assert ws_buffers(cfg, 128, 256, 256, 2) < 2  # 128 + 2 x 64 KB: no room for two tiles
    assert ws_buffers(cfg, 128, 256, 64, 4) < 2  # float32 rows (not a Gluon case; the arithmetic)


def test_ws_fits_rules(device):
    # Where the launcher takes a Gluon kernel: only where asked, on a Hopper GPU with Triton 3.6,
    # for 16-bit caches of at most 256 columns and blocks of 64 or 128 rows at one warpgroup per
    # 64, or of exactly two 256-column boxes in blocks of 64 rows at 4 warps.
    from dataclasses import replace

    from redpajama.kernels.decode.paged import Config, ws_fits

    cfg = Config(64, 8, 3, 128, 132, tma=True, warp_specialized=True)
    cache = torch.zeros(2, 64, 2, 256, dtype=torch.bfloat16, device=device)
    assert ws_fits(cfg, cache, 128, 256) == HOPPER_GLUON
    assert not ws_fits(Config(64, 8, 3, 128, 132, tma=True), cache, 128, 256)
    assert not ws_fits(cfg, cache.float(), 128, 256)
    assert not ws_fits(cfg, cache, 128, 512)  # two column blocks take 64 rows a program
    assert not ws_fits(cfg, cache, 64, 256)  # 8 warps for 64 rows
    assert not ws_fits(Config(32, 4, 3, 128, 132, tma=True, warp_specialized=True), cache, 32, 256)
    # MLA's 512 columns: two blocks of 256, 64 rows at 4 warps (wide_latent_ws.py).
    wide = Config(64, 4, 2, 64, 132, tma=True, warp_specialized=True)
    latent = torch.zeros(2, 64, 1, 512, dtype=torch.bfloat16, device=device)
    assert ws_fits(wide, latent, 64, 512) == HOPPER_GLUON
    assert not ws_fits(wide, latent, 64, 384)  # not two whole boxes
    assert not ws_fits(replace(wide, warps=8), latent, 64, 512)
    assert not ws_fits(wide, latent, 32, 512)
    assert not ws_fits(replace(wide, bs=16), latent, 64, 512)


@pytest.mark.skipif(HOPPER_GLUON, reason="checks the choice where the Gluon kernel is not available")
def test_config_without_gluon_picks_triton_tiles():
    # Without a Hopper GPU and Triton 3.6 (here: no GPU, or another Triton), GLA's configs are the
    # Triton kernels' own tiles, and asking for a CUDA device's config does not need a GPU.
    from redpajama.kernels.decode.paged import Config, config_for, gluon_ready

    cuda = torch.device("cuda")
    assert not gluon_ready(cuda)
    assert config_for(cuda, 256, 64) == Config(32, 4, 3, 128, 132, tma=True)
    assert config_for(cuda, 256, 128) == Config(64, 8, 3, 128, 132, tma=True)
    assert config_for(cuda, 512, 128) == Config(64, 8, 2, 64, 132, tma=True)
    assert config_for(cuda, 128, 32) == Config(64, 4, 3, 128, 132, keys_major=True, tma=True)
