"""Flash attention kernels against the plain-PyTorch reference: forward, lse, backward, varlen,
causality, custom ops, torch.compile. float32 in the CPU interpreter (its bf16 tl.dot is wrong)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.attention import attention_naive, flash_attention
from redpajama.kernels.attention.flash import (
    INTERPRETER_CONFIG,
    Config,
    block_table,
    flash_attn_bwd,
    flash_attn_fwd,
)
from redpajama.kernels.attention.naive import attention_naive_with_lse

# T: a single token, one short of 4 interpreter tiles, and not a multiple of the 16-row tiles.
SEQLENS = (1, 63, 100)
HEADS = ((4, 4), (4, 2), (6, 1))  # (H, G): MHA, GQA, MQA
# (Dqk, Dv): equal; and Dqk != Dv (GTA/GLA-shaped), whose 32-wide q/k and 16-wide v use separate tiles.
DIMS = ((32, 16), (16, 16))
# The full T x heads grid runs for (32, 16); (16, 16) runs on the GQA heads only (time budget).
CASES = [
    pytest.param(t, hg, dims, id=f"T{t}-H{hg[0]}G{hg[1]}-D{dims[0]}x{dims[1]}")
    for t, hg, dims in [(t, hg, DIMS[0]) for t in SEQLENS for hg in HEADS]
    + [(t, HEADS[1], DIMS[1]) for t in SEQLENS]
]


def _inputs(b, t, h, g, dqk, dv, device, seed=0):
    q = unit_randn(b, t, h, dqk, device=device, seed=seed + 1)
    k = unit_randn(b, t, g, dqk, device=device, seed=seed + 2)
    v = unit_randn(b, t, g, dv, device=device, seed=seed + 3)
    do = unit_randn(b, t, h, dv, device=device, seed=seed + 4)
    return q, k, v, do


def _fwd_bwd(fn, q, k, v, do, **kwargs):
    leaves = [x.detach().clone().requires_grad_() for x in (q, k, v)]
    out = fn(*leaves, **kwargs)
    grads = torch.autograd.grad(out, leaves, do)
    return out.detach(), grads


def _assert_close(ref, out, name):
    assert out.shape == ref.shape and out.dtype == ref.dtype, name
    assert not out.isnan().any(), f"{name}: NaN (an element left unwritten)"
    if ref.abs().max() < 1e-5:
        # Mathematically zero (T == 1: one key, softmax is constant): the reference holds only
        # rounding noise, so compare absolutely.
        assert out.abs().max() < 1e-5, f"{name}: {out.abs().max().item()} for a zero gradient"
    else:
        err = rel_rms(ref, out)
        assert err < 1e-5, f"{name}: relative RMS {err}"


@pytest.mark.parametrize("t, heads, dims", CASES)
def test_matches_naive_float32(t, heads, dims, device):
    (h, g), (dqk, dv) = heads, dims
    q, k, v, do = _inputs(2, t, h, g, dqk, dv, device)
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do)
    with poisoned_allocations():
        out, grads = _fwd_bwd(flash_attention, q, k, v, do)
        _, lse = torch.ops.redpajama.flash_attention(q, k, v, None)
    _assert_close(ref_out, out, "o")
    assert out.is_contiguous()
    _, ref_lse = attention_naive_with_lse(q, k, v)
    _assert_close(ref_lse, lse, "lse")
    for name, ref, grad in zip(("dq", "dk", "dv"), ref_grads, grads, strict=True):
        _assert_close(ref, grad, name)


@pytest.mark.parametrize("lengths", [(5, 17, 9), (16, 0, 33)])
def test_varlen_matches_naive(lengths, device):
    # (5, 17, 9): segments not aligned to the 16-row tiles; (16, 0, 33): a tile-aligned segment,
    # an empty one, and one spanning three tiles.
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=device)
    q, k, v, do = _inputs(1, sum(lengths), 4, 2, 32, 16, device, seed=10)
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do, cu_seqlens=cu)
    with poisoned_allocations():
        out, grads = _fwd_bwd(flash_attention, q, k, v, do, cu_seqlens=cu)
        _, lse = torch.ops.redpajama.flash_attention(q, k, v, cu)
    _assert_close(ref_out, out, "o")
    _assert_close(attention_naive_with_lse(q, k, v, cu)[1], lse, "lse")
    for name, ref, grad in zip(("dq", "dk", "dv"), ref_grads, grads, strict=True):
        _assert_close(ref, grad, name)
    # No attention across segments: each segment alone gives the same rows.
    start = 0
    for length in lengths:
        if length:
            rows = slice(start, start + length)
            alone = flash_attention(q[:, rows], k[:, rows], v[:, rows])
            assert rel_rms(alone, out[:, rows]) < 1e-6
        start += length


# Backward tiles of unequal sides, as GPUs use them: the dK/dV kernel holds 32 keys and streams
# 16 queries, the dQ kernel holds 32 queries and streams 16 keys (the forward: 32 x 16).
UNEQUAL = Config(32, 16, 1, 1, 16, 32, 1, 1, 32, 16, 1, 1)


@pytest.mark.parametrize("lengths", [(100,), (5, 40, 0, 33)])
def test_unequal_backward_tiles(lengths, device):
    # T = 100 and segments of 5, 40 and 33 rows: partial held blocks whose causal diagonal spans
    # two streamed blocks, one of them past the end.
    cu = None
    if len(lengths) > 1:
        cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=device)
    q, k, v, do = _inputs(1, sum(lengths), 4, 2, 32, 16, device, seed=20)
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do, cu_seqlens=cu)
    with poisoned_allocations():
        out, lse = flash_attn_fwd(q, k, v, cu, UNEQUAL)
        grads = flash_attn_bwd(do, q, k, v, out, lse, cu, UNEQUAL)
    _assert_close(ref_out, out, "o")
    for name, ref, grad in zip(("dq", "dk", "dv"), ref_grads, grads, strict=True):
        _assert_close(ref, grad, name)


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(fwd_bt=64, fwd_bs=128), "fwd_bt/fwd_bs = 64/128"),
        (dict(dkdv_bt=32, dkdv_bs=16), "dkdv_bs/dkdv_bt = 16/32"),
        (dict(dq_bt=16, dq_bs=48), "dq_bt/dq_bs = 16/48"),
    ],
)
def test_config_rejects_tiles_whose_diagonal_splits_a_block(fields, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(INTERPRETER_CONFIG, **fields)


def test_block_table():
    cu = torch.tensor([0, 5, 5, 22, 31], dtype=torch.int32)
    table = block_table(cu, 31, 8)
    # Blocks: segment 0 one, segment 1 none, segment 2 three, segment 3 two; 31 // 8 + 4 = 7 entries.
    expected = [[0, 0], [2, 0], [2, 1], [2, 2], [3, 0], [3, 1], [-1, 0]]
    assert table.tolist() == expected and table.dtype == torch.int32


def test_causal(device):
    # Changing keys/values at and after position p changes no output before p, and changes p's.
    t, p = 40, 23
    q, k, v, _ = _inputs(1, t, 2, 1, 16, 16, device, seed=20)
    out = flash_attention(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, p:] = unit_randn(1, t - p, 1, 16, device=device, seed=21)
    v2[:, p:] = unit_randn(1, t - p, 1, 16, device=device, seed=22)
    out2 = flash_attention(q, k2, v2)
    assert torch.equal(out[:, :p], out2[:, :p])
    assert (out[:, p] - out2[:, p]).abs().min() > 0


def test_non_contiguous_inputs(device):
    # q, k, v as views of a fused projection (strided), as a model's qkv split gives them.
    b, t, h, g, d = 2, 20, 4, 2, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=30)
    q, k, v = qkv.split([h * d, g * d, g * d], dim=-1)
    q, k, v = q.view(b, t, h, d), k.view(b, t, g, d), v.view(b, t, g, d)
    do = unit_randn(b, t, h, d, device=device, seed=31)
    do_strided = do.transpose(1, 2).contiguous().transpose(1, 2)  # same values, (B, H, T, D) memory
    assert not q.is_contiguous() and not do_strided.is_contiguous()
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do)
    out, grads = _fwd_bwd(flash_attention, q, k, v, do_strided)
    _assert_close(ref_out, out, "o")
    for name, ref, grad in zip(("dq", "dk", "dv"), ref_grads, grads, strict=True):
        _assert_close(ref, grad, name)


def test_opcheck(device):
    q, k, v, do = _inputs(1, 20, 2, 1, 16, 8, device, seed=40)
    args = (q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), None)
    torch.library.opcheck(torch.ops.redpajama.flash_attention.default, args)
    o, lse = torch.ops.redpajama.flash_attention(q.detach(), k.detach(), v.detach(), None)
    bwd_args = (do, q.detach(), k.detach(), v.detach(), o, lse, None)
    torch.library.opcheck(torch.ops.redpajama.flash_attention_bwd.default, bwd_args)


def test_compiles_without_graph_break(device):
    torch._dynamo.reset()
    compiled = torch.compile(flash_attention, fullgraph=True)
    q, k, v, do = _inputs(2, 18, 2, 1, 16, 16, device, seed=50)
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do)
    out, grads = _fwd_bwd(compiled, q, k, v, do)
    _assert_close(ref_out, out, "o")
    for name, ref, grad in zip(("dq", "dk", "dv"), ref_grads, grads, strict=True):
        _assert_close(ref, grad, name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 tl.dot is wrong in the interpreter")
@pytest.mark.parametrize("dims", [(64, 64), (128, 128), (192, 128)])
def test_bf16_close_to_float32_reference(dims, device):
    # GPU tiles (128 x 64 forward, 64 x 64 backward): T=500 spans several, not a multiple of any.
    dqk, dv = dims
    q, k, v, do = _inputs(2, 500, 8, 2, dqk, dv, device, seed=60)
    ref_out, ref_grads = _fwd_bwd(attention_naive, q, k, v, do)
    bf = [x.bfloat16() for x in (q, k, v, do)]
    with poisoned_allocations():
        out, grads = _fwd_bwd(flash_attention, *bf)
    assert rel_rms(ref_out, out.float()) < 2e-2
    for ref, grad in zip(ref_grads, grads, strict=True):
        assert grad.dtype == torch.bfloat16 and rel_rms(ref, grad.float()) < 2e-2


def test_interpreter_tiles_are_small():
    # The grids above rely on 16-row tiles to span several tiles per sequence.
    assert INTERPRETER_CONFIG.fwd_bt == INTERPRETER_CONFIG.dkdv_bs == INTERPRETER_CONFIG.dq_bt == 16


@pytest.mark.parametrize(
    "shapes, kwargs, error, match",
    [
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 8, 1)), {}, ValueError, "4-D"),
        (((1, 4, 3, 8), (1, 4, 2, 8), (1, 4, 2, 8)), {}, ValueError, "H=3 must be a multiple of"),
        (((1, 4, 2, 8), (1, 4, 2, 4), (1, 4, 2, 8)), {}, ValueError, "k head dim 4"),
        (((1, 4, 2, 8), (1, 5, 2, 8), (1, 5, 2, 8)), {}, ValueError, "share \\(B, T\\)"),
        (((1, 4, 2, 512), (1, 4, 2, 512), (1, 4, 2, 8)), {}, ValueError, "1..256"),
        (((2, 4, 2, 8), (2, 4, 2, 8), (2, 4, 2, 8)), {"cu": [0, 4]}, ValueError, "B=2"),
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 8)), {"cu": [0, 3]}, ValueError, "T=4, got 0 .. 3"),
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 8)), {"cu": [0, 3, 2, 4]}, ValueError, "non-decreasing"),
    ],
)
def test_rejects_bad_arguments(shapes, kwargs, error, match):
    q, k, v = (torch.ones(s) for s in shapes)
    cu = torch.tensor(kwargs["cu"], dtype=torch.int32) if "cu" in kwargs else None
    with pytest.raises(error, match=match):
        flash_attention(q, k, v, cu)


def test_rejects_bad_dtypes():
    x = torch.ones(1, 4, 2, 8)
    with pytest.raises(TypeError, match="float64"):
        flash_attention(x.double(), x.double(), x.double())
    with pytest.raises(TypeError, match="share a dtype"):
        flash_attention(x, x.half(), x)
    with pytest.raises(ValueError, match="int32"):
        flash_attention(x, x, x, torch.tensor([0, 4]))
