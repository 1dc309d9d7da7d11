"""Log-linear (Fenwick-level) masks, the log-linear Mamba-2 quadratic reference, and the chunked path
against it."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn.functional as F

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.log_linear import (
    level_matrix,
    log_linear,
    log_linear_chunked,
    log_linear_quadratic,
    num_levels,
    weighted_mask,
)
from redpajama.kernels.log_linear.buckets import bucket_states, bucket_states_bwd
from redpajama.kernels.log_linear.chunked import bucket_states as chunked_bucket_states
from redpajama.kernels.log_linear.chunked import bucket_states_bwd as chunked_bucket_states_bwd
from redpajama.kernels.log_linear.chunked import log_linear_chunked_bwd
from redpajama.kernels.log_linear.log_linear import DBC_BLOCK_N
from redpajama.kernels.ssd.naive import ssd_quadratic
from redpajama.kernels.ssd.ssd import BWD_SCAN_BLOCK_N


def make_inputs(b, t, h, g, p, n, seed=0, a_scale=1.0):
    """float64 SSD inputs as in test_ssd.py: unit x, B, C, D; dt = softplus(N(-1, 1)); A = -exp(N(0, .5))
    times a_scale (small: slow decay, so that far levels carry weight)."""
    x = unit_randn(b, t, h, p, seed=seed + 1)
    dt = F.softplus(unit_randn(b, t, h, seed=seed + 2) - 1)
    a = -torch.exp(0.5 * unit_randn(h, seed=seed + 3)) * a_scale
    bm, cm = unit_randn(b, t, g, n, seed=seed + 4), unit_randn(b, t, g, n, seed=seed + 5)
    d = unit_randn(h, seed=seed + 6)
    return [v.double() for v in (x, dt, a, bm, cm, d)]


def _level_loop(t: int) -> torch.Tensor:
    # The definition, one pair at a time: 0 on the diagonal, floor(log2(t xor s)) + 1 below it.
    out = torch.full((t, t), -1, dtype=torch.int64)
    for i in range(t):
        for j in range(i + 1):
            out[i, j] = 0 if i == j else math.floor(math.log2(i ^ j)) + 1
    return out


def _lam(b, t, h, nl, seed):
    return unit_randn(b, t, h, nl, seed=seed).abs().double()


@pytest.mark.parametrize("t", [1, 2, 17, 63, 64, 500])
def test_level_matrix_matches_loop(t):
    assert torch.equal(level_matrix(t), _level_loop(t))


@pytest.mark.parametrize("t", [2, 63, 64, 500])
def test_levels_are_fenwick_buckets(t):
    level = level_matrix(t)
    assert level.max().item() + 1 == num_levels(t) <= math.ceil(math.log2(t)) + 1
    for i in range(t):
        covered = []
        for lv in range(1, num_levels(t)):
            keys = torch.nonzero(level[i, :i] == lv).flatten().tolist()
            if not keys:
                assert not (i >> (lv - 1)) & 1  # empty iff bit lv-1 of t is clear
                continue
            # Contiguous, a power of two long, and the Fenwick range for this set bit of t.
            assert keys == list(range(keys[0], keys[-1] + 1))
            assert len(keys) == 2 ** (lv - 1)
            assert keys[0] == (i >> lv) << lv
            covered += keys
        assert sorted(covered) == list(range(i))  # the buckets partition the prefix [0, t)


def test_weighted_mask_matches_loop():
    b, t, h = 2, 63, 3
    nl = num_levels(t)
    lam = _lam(b, t, h, nl + 1, seed=1)  # one spare level: unused, must not matter
    mask = weighted_mask(lam)
    ref = torch.zeros(b, h, t, t, dtype=torch.float64)
    for i in range(t):
        for j in range(i + 1):
            lv = 0 if i == j else (i ^ j).bit_length()
            ref[:, :, i, j] = lam[:, i, :, lv]
    assert torch.equal(mask, ref)


def test_weighted_mask_rejects_too_few_levels():
    with pytest.raises(ValueError, match="L=3 levels, T=9 needs at least 5"):
        weighted_mask(torch.ones(1, 9, 2, 3))


@pytest.mark.parametrize("shape", [(2, 63, 4, 4, 8, 16), (1, 130, 4, 2, 12, 8)])
def test_all_ones_is_ssd(shape):
    inputs = make_inputs(*shape)
    b, t, h = inputs[1].shape
    lam = torch.ones(b, t, h, num_levels(t), dtype=torch.float64)
    assert rel_rms(ssd_quadratic(*inputs), log_linear_quadratic(*inputs, lam)) < 1e-12


def test_matches_direct_double_loop():
    b, t, h, g, p, n = 1, 20, 4, 2, 3, 5
    x, dt, a, bm, cm, d = make_inputs(b, t, h, g, p, n)
    lam = _lam(b, t, h, num_levels(t), seed=2)
    out = log_linear_quadratic(x, dt, a, bm, cm, d, lam)
    ref = torch.zeros_like(x)
    for hh in range(h):
        gg = hh // (h // g)
        for i in range(t):
            ref[:, i, hh] = d[hh] * x[:, i, hh]
            for j in range(i + 1):
                lv = 0 if i == j else (i ^ j).bit_length()
                decay = torch.exp(a[hh] * dt[:, j + 1 : i + 1, hh].sum(dim=1))  # (B,)
                score = lam[:, i, hh, lv] * (cm[:, i, gg] * bm[:, j, gg]).sum(-1) * decay * dt[:, j, hh]
                ref[:, i, hh] += score[:, None] * x[:, j, hh]
    assert rel_rms(ref, out) < 1e-12


def test_levels_sum_to_ssd():
    # Linearity in lam: one-hot weights per level add up to the all-ones (SSD) output, D counted once.
    inputs = make_inputs(1, 63, 4, 2, 8, 16)
    b, t, h = inputs[1].shape
    nl = num_levels(t)
    total = sum(
        log_linear_quadratic(*inputs, torch.eye(nl, dtype=torch.float64)[lv].expand(b, t, h, nl))
        for lv in range(nl)
    )
    x, d = inputs[0], inputs[5]
    assert rel_rms(ssd_quadratic(*inputs), total - (nl - 1) * d[:, None] * x) < 1e-12


def test_gradcheck():
    inputs = [v.requires_grad_() for v in make_inputs(1, 6, 2, 1, 2, 3)]
    lam = _lam(1, 6, 2, num_levels(6), seed=3).requires_grad_()
    assert torch.autograd.gradcheck(log_linear_quadratic, (*inputs, lam))


NAMES = ("x", "dt", "A", "Bm", "Cm", "D", "lam")


def _fwd_bwd(fn, inputs, d_y, **kwargs):
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    with poisoned_allocations():
        y = fn(*leaves, **kwargs)
    y.backward(d_y)
    return y.detach(), [v.grad for v in leaves]


def _assert_close(ref, out, tol, name):
    # dA is exactly zero at T = 1 (a single token never decays): then the output must be ~0 too.
    if ref.abs().max() == 0:
        assert out.abs().max().item() < tol, name
    else:
        assert rel_rms(ref, out) < tol, name


@pytest.mark.parametrize("a_scale", [1.0, 0.01])
@pytest.mark.parametrize("chunk_size", [16, 64])
@pytest.mark.parametrize("t", [1, 63, 64, 65, 500])
def test_chunked_matches_quadratic_float32(t, chunk_size, a_scale):
    # G < H, two spare levels in lam; float64 reference, float32 chunked, forward and every gradient.
    inputs = make_inputs(1, t, 4, 2, 8, 16, a_scale=a_scale)
    lam = _lam(1, t, 4, num_levels(t) + 2, seed=7)
    d_y = unit_randn(1, t, 4, 8, seed=9).double()
    ref, ref_grads = _fwd_bwd(log_linear_quadratic, [*inputs, lam], d_y)
    f32 = [v.float() for v in (*inputs, lam)]
    out, grads = _fwd_bwd(log_linear_chunked, f32, d_y.float(), chunk_size=chunk_size)
    assert out.dtype == torch.float32
    assert rel_rms(ref, out) < 1e-5
    for name, r, g, v in zip(NAMES, ref_grads, grads, f32, strict=True):
        assert g.shape == v.shape and g.dtype == torch.float32, name
        _assert_close(r, g, 1e-5, name)


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 16, 64])
@pytest.mark.parametrize("t", [1, 2, 17, 64, 130])
def test_chunked_matches_quadratic_float64(t, chunk_size):
    inputs = make_inputs(2, t, 4, 1, 5, 3, a_scale=0.05)
    lam = _lam(2, t, 4, num_levels(t), seed=7)
    out = log_linear_chunked(*inputs, lam, chunk_size=chunk_size)
    assert out.dtype == torch.float64
    assert rel_rms(log_linear_quadratic(*inputs, lam), out) < 1e-12


def test_chunked_each_level_alone():
    # One level at a time (one-hot lam) pins every level's pairs, not just their sum; slow decay so the
    # far inter-chunk levels are not negligible.
    t, chunk_size = 100, 4  # levels 0-2 inside a chunk, 3-7 across chunks
    inputs = make_inputs(1, t, 2, 1, 4, 4, a_scale=0.01)
    x, d = inputs[0], inputs[5]
    nl = num_levels(t)
    for lv in range(nl):
        lam = torch.eye(nl, dtype=torch.float64)[lv].expand(1, t, 2, nl)
        ref = log_linear_quadratic(*inputs, lam) - d[:, None] * x
        assert ref.abs().max() > 0.1, lv  # the level does reach something
        out = log_linear_chunked(*inputs, lam, chunk_size=chunk_size) - d[:, None] * x
        assert rel_rms(ref, out) < 1e-12, lv


@pytest.mark.parametrize("t", [63, 500])
def test_chunked_all_ones_is_ssd(t):
    inputs = make_inputs(1, t, 4, 2, 8, 16)
    lam = torch.ones(1, t, 4, num_levels(t) + 1, dtype=torch.float64)
    assert rel_rms(ssd_quadratic(*inputs), log_linear_chunked(*inputs, lam, chunk_size=16)) < 1e-12


def test_chunked_keeps_half_precision_dtype():
    # x in bfloat16, math in float32: the dtype comes back, the error is about bfloat16's epsilon.
    inputs = [v.float() for v in make_inputs(1, 70, 4, 2, 8, 16)]
    lam = _lam(1, 70, 4, num_levels(70), seed=7).float()
    x16 = inputs[0].bfloat16()
    out = log_linear_chunked(x16, *inputs[1:], lam, chunk_size=16)
    assert out.dtype == torch.bfloat16
    ref = log_linear_quadratic(x16.double(), *[v.double() for v in inputs[1:]], lam.double())
    assert rel_rms(ref, out) < 1e-2


def test_chunked_rejects_bad_arguments():
    inputs = make_inputs(1, 9, 2, 1, 2, 3)
    with pytest.raises(ValueError, match="L=3 levels, T=9 needs at least 5"):
        log_linear_chunked(*inputs, torch.ones(1, 9, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="power of two, got 48"):
        log_linear_chunked(*inputs, torch.ones(1, 9, 2, 5, dtype=torch.float64), chunk_size=48)


@pytest.mark.parametrize("t, chunk_size", [(1, 16), (17, 16), (63, 16), (100, 16), (100, 32)])
def test_triton_matches_quadratic_float32(t, chunk_size, device):
    # Tiny shapes: off CUDA this runs in Triton's interpreter. Slow decay so every level carries weight.
    inputs = make_inputs(1, t, 4, 2, 8, 16, a_scale=0.05)
    lam = _lam(1, t, 4, num_levels(t), seed=7)
    d_y = unit_randn(1, t, 4, 8, seed=9).double()
    ref, ref_grads = _fwd_bwd(log_linear_quadratic, [*inputs, lam], d_y)
    f32 = [v.float().to(device) for v in (*inputs, lam)]
    out, grads = _fwd_bwd(log_linear, f32, d_y.float().to(device), chunk_size=chunk_size)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert rel_rms(ref, out.cpu()) < 1e-5
    for name, r, g, v in zip(NAMES, ref_grads, grads, f32, strict=True):
        assert g.shape == v.shape and g.dtype == torch.float32, name
        _assert_close(r, g.cpu(), 1e-5, name)


def test_triton_spare_levels_and_bfloat16(device):
    # lam with spare levels (a different row stride), x in bfloat16: dtype kept, error ~ bfloat16's.
    t = 40
    inputs = [v.float() for v in make_inputs(1, t, 4, 2, 8, 16, a_scale=0.05)]
    lam = _lam(1, t, 4, num_levels(t) + 3, seed=7).float()
    x16 = inputs[0].bfloat16()
    out = log_linear(*[v.to(device) for v in (x16, *inputs[1:], lam)], chunk_size=16)
    assert out.dtype == torch.bfloat16
    ref = log_linear_quadratic(x16.double(), *[v.double() for v in inputs[1:]], lam.double())
    assert rel_rms(ref, out.cpu()) < 1e-2


def test_triton_rejects_bad_lam():
    inputs = make_inputs(1, 9, 2, 1, 2, 3)
    f32 = [v.float() for v in inputs]
    with pytest.raises(ValueError, match="L=3 levels, T=9 needs at least 5"):
        log_linear(*f32, torch.ones(1, 9, 2, 3))
    with pytest.raises(ValueError, match=r"lam must be \(B, T, H, L\)"):
        log_linear(*f32, torch.ones(1, 9, 3, 5))
    with pytest.raises(TypeError, match="lam must be float16, bfloat16 or float32"):
        log_linear(*f32, torch.ones(1, 9, 2, 5, dtype=torch.float64))


@pytest.mark.parametrize("nc", [2, 3, 5, 8, 9, 17, 33])
def test_bucket_state_kernels_match_the_segment_tree(nc, device):
    # The sequential Triton pass against the segment tree of the chunked path, forward and (through
    # autograd on the tree) backward. Only non-empty buckets are written and read: the outputs are
    # allocated NaN-poisoned, and the gradient and states handed to the reverse pass hold NaN in
    # every empty bucket.
    b, h, n, p = 2, 3, 4, 5
    levels = (nc - 1).bit_length()
    states = unit_randn(b, nc, h, n, p, seed=1)
    totals = -0.3 * unit_randn(b, h, nc, seed=2).abs()
    ref = chunked_bucket_states(states, totals, levels)
    full = ((torch.arange(nc)[:, None] >> torch.arange(levels)) & 1).bool()  # (NC, J)
    full = full[None, :, :, None, None, None].expand_as(ref)
    assert (ref[~full] == 0).all()
    with poisoned_allocations():
        out = bucket_states(states.to(device), totals.to(device), levels).cpu()
    torch.testing.assert_close(out[full], ref[full], rtol=1e-5, atol=1e-5)
    d_out = unit_randn(*ref.shape, seed=3) * full
    _, d_states, d_totals = chunked_bucket_states_bwd(states, totals, levels, d_out)
    nan_outside = lambda v: v.masked_fill(~full, float("nan")).to(device)  # noqa: E731
    with poisoned_allocations():
        got_states, got_totals = bucket_states_bwd(totals.to(device), nan_outside(out), nan_outside(d_out))
    torch.testing.assert_close(got_states.cpu(), d_states, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_totals.cpu(), d_totals, rtol=1e-5, atol=1e-5)


def _fwd_bwd_poisoned(fn, inputs, d_y, **kwargs):
    # Forward and backward both under NaN-poisoned torch.empty / empty_like.
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    with poisoned_allocations():
        y = fn(*leaves, **kwargs)
        grads = torch.autograd.grad(y, leaves, d_y)
    return y.detach(), list(grads)


@pytest.mark.parametrize("t, chunk_size", [(1, 16), (17, 16), (64, 16), (65, 16), (200, 16), (130, 4)])
def test_chunked_bwd_matches_autograd_float64(t, chunk_size):
    # The hand-written backward (only the bucket-state segment tree by autograd) against autograd
    # through log_linear_chunked: G < H, two spare levels, slow decay.
    inputs = make_inputs(2, t, 4, 2, 5, 3, a_scale=0.01)
    lam = _lam(2, t, 4, num_levels(t) + 2, seed=7)
    d_y = unit_randn(2, t, 4, 5, seed=9).double()
    leaves = [v.clone().requires_grad_() for v in (*inputs, lam)]
    ref = torch.autograd.grad(log_linear_chunked(*leaves, chunk_size=chunk_size), leaves, d_y)
    out = log_linear_chunked_bwd(*inputs, lam, d_y, chunk_size=chunk_size)
    for name, r, g, v in zip(NAMES, ref, out, leaves, strict=True):
        assert g.shape == v.shape and g.dtype == torch.float64, name
        _assert_close(r, g, 1e-12, name)


@pytest.mark.parametrize("t", [1, 63, 64, 65, 200])
def test_triton_backward_matches_quadratic_float32(t, device):
    # All seven gradients against the float64 quadratic reference: chunk 16, G < H, two spare levels
    # in lam, slow decay so that the far (chunk-level) levels carry weight; NaN-poisoned allocations
    # in forward and backward.
    h, g = (2, 1) if t > 100 else (4, 2)
    inputs = make_inputs(1, t, h, g, 8, 16, a_scale=0.01)
    lam = _lam(1, t, h, num_levels(t) + 2, seed=7)
    d_y = unit_randn(1, t, h, 8, seed=9).double()
    ref, ref_grads = _fwd_bwd(log_linear_quadratic, [*inputs, lam], d_y)
    f32 = [v.float().to(device) for v in (*inputs, lam)]
    out, grads = _fwd_bwd_poisoned(log_linear, f32, d_y.float().to(device), chunk_size=16)
    assert rel_rms(ref, out.cpu()) < 1e-5
    for name, r, gr, v in zip(NAMES, ref_grads, grads, f32, strict=True):
        assert gr.shape == v.shape and gr.dtype == torch.float32, name
        _assert_close(r, gr.cpu(), 1e-5, name)


def test_triton_backward_does_not_recompute(monkeypatch, device):
    # The backward is Triton kernels only: the PyTorch chunked path (forward, hand-written backward or
    # the bucket-state segment tree), einsum and autograd.grad must not run.
    def fail(*args, **kwargs):
        raise AssertionError("the log-linear backward went through PyTorch")

    t, h, n, p = 70, 4, 16, 8
    inputs = [v.float().to(device) for v in make_inputs(1, t, h, 2, p, n, a_scale=0.01)]
    lam = _lam(1, t, h, num_levels(t) + 1, seed=7).float().to(device)
    d_y = unit_randn(1, t, h, p, seed=9).to(device)
    ref = _fwd_bwd(log_linear_quadratic, [v.double().cpu() for v in (*inputs, lam)], d_y.double().cpu())[1]
    chunked = importlib.import_module("redpajama.kernels.log_linear.chunked")
    for name in (
        "log_linear_chunked",
        "log_linear_chunked_bwd",
        "_intra_chunk",
        "_inter_chunk",
        "bucket_states",
    ):
        monkeypatch.setattr(chunked, name, fail)
    monkeypatch.setattr(torch, "einsum", fail)
    monkeypatch.setattr(torch.autograd, "grad", fail)
    leaves = [v.clone().requires_grad_() for v in (*inputs, lam)]
    log_linear(*leaves, chunk_size=16).backward(d_y)
    monkeypatch.undo()
    for name, r, v in zip(NAMES, ref, leaves, strict=True):
        _assert_close(r, v.grad.cpu(), 1e-5, name)


def test_triton_backward_walks_the_state_in_blocks(device):
    # N = 72: the backward kernels walk N in blocks (DBC_BLOCK_N, SSD's BWD_SCAN_BLOCK_N), the
    # last one part-masked; the sums over N cross the blocks.
    shape = (1, 40, 2, 1, 12, 72)
    assert all(shape[-1] > nb and shape[-1] % nb for nb in (DBC_BLOCK_N, BWD_SCAN_BLOCK_N.value))
    inputs = make_inputs(*shape, a_scale=0.01)
    lam = _lam(1, 40, 2, num_levels(40), seed=7)
    d_y = unit_randn(1, 40, 2, 12, seed=9).double()
    ref, ref_grads = _fwd_bwd(log_linear_quadratic, [*inputs, lam], d_y)
    f32 = [v.float().to(device) for v in (*inputs, lam)]
    _, grads = _fwd_bwd_poisoned(log_linear, f32, d_y.float().to(device), chunk_size=16)
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        _assert_close(r, g.cpu(), 1e-5, name)


def test_triton_backward_bfloat16(device):
    # 16-bit inputs, math in float32: every gradient in its input's dtype, error about bfloat16's.
    t = 40
    inputs = [v.bfloat16().double() for v in make_inputs(1, t, 4, 2, 8, 16, a_scale=0.05)]
    lam = _lam(1, t, 4, num_levels(t) + 1, seed=7).bfloat16().double()
    d_y = unit_randn(1, t, 4, 8, seed=9).bfloat16().double()
    ref, ref_grads = _fwd_bwd(log_linear_quadratic, [*inputs, lam], d_y)
    b16 = [v.to(device=device, dtype=torch.bfloat16) for v in (*inputs, lam)]
    out, grads = _fwd_bwd_poisoned(log_linear, b16, d_y.to(device, torch.bfloat16), chunk_size=16)
    assert rel_rms(ref, out.cpu()) < 1e-2
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert g.dtype == torch.bfloat16, name
        assert rel_rms(r, g.cpu()) < 1e-2, name
