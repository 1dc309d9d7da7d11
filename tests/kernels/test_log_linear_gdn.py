"""Log-linear Gated DeltaNet: the closed form against the token-by-token per-level recurrence and
against plain Gated DeltaNet (every lam == 1), and the chunked path against the closed form,
outputs and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from redpajama.kernels._testing import rel_rms, unit_randn
from redpajama.kernels.log_linear import level_matrix, num_levels
from redpajama.kernels.log_linear_gdn import (
    gdn_matrix,
    log_linear_gdn_chunked,
    log_linear_gdn_quadratic,
    log_linear_gdn_recurrent,
    log_linear_gdn_step,
)


def make_inputs(b, t, h, dk, dv, seed=0, extra_levels=1):
    """float64: unit q, v; L2-normalised k (as Gated DeltaNet's layer feeds it); slow decays
    g = -0.2 * U(0, 1), so far levels carry weight; beta in (0, 1); lam in (0, 1) with spare levels."""
    q = unit_randn(b, t, h, dk, seed=seed + 1)
    k = F.normalize(unit_randn(b, t, h, dk, seed=seed + 2), dim=-1)
    v = unit_randn(b, t, h, dv, seed=seed + 3)
    g = -0.2 * torch.sigmoid(unit_randn(b, t, h, seed=seed + 4))
    beta = torch.sigmoid(unit_randn(b, t, h, seed=seed + 5))
    lam = torch.sigmoid(unit_randn(b, t, h, num_levels(t) + extra_levels, seed=seed + 6))
    return [x.double() for x in (q, k, v, g, beta, lam)]


def gated_delta_rule(q, k, v, g, beta):
    """Gated DeltaNet's recurrence, one token at a time: S = exp(g)(I - beta k k^T) S + beta k v^T."""
    b, t, h, dk = k.shape
    state = q.new_zeros(b, h, dk, v.shape[-1])
    eye = torch.eye(dk, dtype=q.dtype)
    out = []
    for i in range(t):
        kt, bt = k[:, i, :, :, None], beta[:, i, :, None, None]
        state = torch.exp(g[:, i])[..., None, None] * (eye - bt * kt * kt.transpose(-1, -2)) @ state
        state = state + bt * kt * v[:, i, :, None, :]
        out.append(torch.einsum("bhk,bhkv->bhv", q[:, i], state))
    return torch.stack(out, dim=1)


def test_all_ones_lam_is_gated_deltanet():
    q, k, v, g, beta, lam = make_inputs(2, 37, 3, 8, 5)
    ref = gated_delta_rule(q, k, v, g, beta)
    assert rel_rms(ref, log_linear_gdn_quadratic(q, k, v, g, beta, torch.ones_like(lam))) < 1e-12
    assert rel_rms(ref, torch.einsum("bhts,bshv->bthv", gdn_matrix(q, k, g, beta), v)) < 1e-12


@pytest.mark.parametrize("t", (1, 2, 5, 16, 63))
def test_closed_form_matches_recurrence(t):
    # The recurrence keeps one state per Fenwick bucket and merges them like a binary counter; the
    # closed form weights P by lam at level(t, s) = bit_length(t xor s): two independent routes.
    args = make_inputs(2, t, 2, 6, 4, seed=t)
    ref = log_linear_gdn_recurrent(*args)
    assert rel_rms(ref, log_linear_gdn_quadratic(*args)) < 1e-12


def test_one_level_reads_only_its_keys():
    # lam one-hot on level l: o_t sums P[t, s] v_s over exactly the keys at level l.
    t = 40
    q, k, v, g, beta, lam = make_inputs(1, t, 2, 4, 3, seed=9)
    p = gdn_matrix(q, k, g, beta)
    levels = level_matrix(t)
    for lv in range(num_levels(t)):
        one_hot = torch.zeros_like(lam)
        one_hot[..., lv] = 1
        expect = torch.einsum("bhts,bshv->bthv", p * (levels == lv), v)
        assert rel_rms(expect, log_linear_gdn_recurrent(q, k, v, g, beta, one_hot)) < 1e-12


@pytest.mark.parametrize("chunk", (4, 16, 64))
@pytest.mark.parametrize("t", (1, 3, 63, 64, 65, 500))
def test_chunked_matches_closed_form(t, chunk):
    args = make_inputs(1, t, 2, 8, 6, seed=t + chunk)
    ref = log_linear_gdn_quadratic(*args)
    out = log_linear_gdn_chunked(*args, chunk_size=chunk)
    assert out.dtype == torch.float64
    assert rel_rms(ref, out) < 1e-12


def test_chunked_float32():
    args = make_inputs(2, 200, 2, 16, 16, seed=3)
    ref = log_linear_gdn_quadratic(*args)
    out = log_linear_gdn_chunked(*(x.float() for x in args), chunk_size=16)
    assert out.dtype == torch.float32
    assert rel_rms(ref, out) < 1e-5


@pytest.mark.parametrize("t, chunk", [(63, 8), (100, 16)])
def test_chunked_gradients_match_closed_form(t, chunk):
    args = [x.requires_grad_() for x in make_inputs(1, t, 2, 4, 3, seed=t)]
    d_out = unit_randn(1, t, 2, 3, seed=99).double()
    ref = torch.autograd.grad(log_linear_gdn_quadratic(*args), args, d_out)
    out = torch.autograd.grad(log_linear_gdn_chunked(*args, chunk_size=chunk), args, d_out)
    for name, r, o in zip(("q", "k", "v", "g", "beta", "lam"), ref, out, strict=True):
        assert rel_rms(r, o) < 1e-10, name


def test_decoding_steps_match_the_chunked_forward_in_log_t_states():
    # Decoding one token at a time from the states alone: outputs equal the chunked forward's, and
    # the states hold bit_length(t) + 1 levels, never T tokens.
    t = 70
    q, k, v, g, beta, lam = make_inputs(2, t, 2, 8, 4, seed=5)
    ref = log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size=16)
    states = q.new_zeros(2, 2, 1, 8, 4)
    for i in range(t):
        args = (x[:, i] for x in (q, k, v, g, beta, lam))
        o_t, states = log_linear_gdn_step(states, i, *args)
        assert states.shape[2] == (i + 1).bit_length() + 1
        assert rel_rms(ref[:, i], o_t) < 1e-12
    with pytest.raises(ValueError, match="needs states of 2 levels"):
        log_linear_gdn_step(q.new_zeros(2, 2, 1, 8, 4), 1, *(x[:, 1] for x in (q, k, v, g, beta, lam)))


def test_zero_beta_writes_nothing():
    q, k, v, g, beta, lam = make_inputs(1, 30, 2, 4, 3)
    out = log_linear_gdn_chunked(q, k, v, g, torch.zeros_like(beta), lam, chunk_size=8)
    assert torch.equal(out, torch.zeros_like(out))


def test_argument_errors():
    q, k, v, g, beta, lam = make_inputs(1, 20, 1, 4, 3)
    with pytest.raises(ValueError, match="power of two"):
        log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size=12)
    with pytest.raises(ValueError, match="levels"):
        log_linear_gdn_chunked(q, k, v, g, beta, lam[..., :3])
    with pytest.raises(ValueError, match="levels"):
        log_linear_gdn_recurrent(q, k, v, g, beta, lam[..., :3])
    with pytest.raises(ValueError, match="q and k"):
        log_linear_gdn_chunked(q, k[..., :2], v, g, beta, lam)
    with pytest.raises(ValueError, match="beta must have shape"):
        log_linear_gdn_chunked(q, k, v, g, beta[:, :5], lam)
    with pytest.raises(ValueError, match="v must have shape"):
        log_linear_gdn_quadratic(q, k, v[:, :, :, None], g, beta, lam)
    with pytest.raises(ValueError, match="g must be a floating-point"):
        log_linear_gdn_chunked(q, k, v, g.long(), beta, lam)
