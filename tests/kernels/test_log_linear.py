"""Log-linear (Fenwick-level) masks and the log-linear Mamba-2 quadratic reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from redpajama.kernels._testing import rel_rms, unit_randn
from redpajama.kernels.log_linear import level_matrix, log_linear_quadratic, num_levels, weighted_mask
from redpajama.kernels.ssd.naive import ssd_quadratic


def make_inputs(b, t, h, g, p, n, seed=0):
    """float64 SSD inputs as in test_ssd.py: unit x, B, C, D; dt = softplus(N(-1, 1)); A = -exp(N(0, .5))."""
    x = unit_randn(b, t, h, p, seed=seed + 1)
    dt = F.softplus(unit_randn(b, t, h, seed=seed + 2) - 1)
    a = -torch.exp(0.5 * unit_randn(h, seed=seed + 3))
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
