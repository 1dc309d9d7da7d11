"""Log-linear Gated DeltaNet: the closed form against the token-by-token per-level recurrence and
against plain Gated DeltaNet (every lam == 1), the chunked path against the closed form, and the
op with Triton bucket passes against both, outputs and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.log_linear import level_matrix, num_levels
from redpajama.kernels.log_linear_gdn import (
    buckets,
    gdn_matrix,
    log_linear_gdn,
    log_linear_gdn_chunked,
    log_linear_gdn_quadratic,
    log_linear_gdn_recurrent,
    log_linear_gdn_step,
)
from redpajama.kernels.log_linear_gdn.chunked import bucket_states, chunk_inputs, chunk_terms, transitions
from redpajama.kernels.log_linear_gdn.log_linear_gdn import _by_head, fits_kernels


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


NAMES = ("q", "k", "v", "g", "beta", "lam")


def _fwd_bwd_poisoned(args, d_out, device, chunk_size):
    # The op's forward and backward under NaN-poisoned torch.empty / empty_like, on the device.
    leaves = [x.float().to(device).requires_grad_() for x in args]
    with poisoned_allocations():
        out = log_linear_gdn(*leaves, chunk_size=chunk_size)
        grads = torch.autograd.grad(out, leaves, d_out.float().to(device))
    return out.detach().cpu(), [x.cpu() for x in grads]


@pytest.mark.parametrize("t, chunk", [(17, 16), (63, 16), (64, 16), (130, 16), (500, 32)])
def test_triton_matches_closed_form(t, chunk, device):
    # T = 17 and 64 leave one and four chunks (no chunk levels / levels 1-2); 130 and 500 walk
    # three to four chunk levels, with a partial last chunk.
    args = [x.requires_grad_() for x in make_inputs(2, t, 2, 16, 24, seed=t)]
    d_out = unit_randn(2, t, 2, 24, seed=98).double()
    ref = log_linear_gdn_quadratic(*args)
    ref_grads = torch.autograd.grad(ref, args, d_out)
    out, grads = _fwd_bwd_poisoned(args, d_out, device, chunk)
    assert out.dtype == torch.float32
    assert rel_rms(ref, out) < 1e-5
    for name, r, o in zip(NAMES, ref_grads, grads, strict=True):
        assert rel_rms(r, o) < 1e-5, name


def test_triton_walks_value_and_key_blocks(monkeypatch, device):
    # Several value blocks in every pass (the last one partial) and several key blocks in the
    # gradient kernel: V = 40 in blocks of 16, K = 32 in blocks of 16.
    monkeypatch.setattr(buckets, "FWD_LAUNCH", (16, 4))
    monkeypatch.setattr(buckets, "BWD_LAUNCH", (16, 4))
    monkeypatch.setattr(buckets, "GRADS_LAUNCH", (16, 4))
    t = 150
    args = [x.requires_grad_() for x in make_inputs(1, t, 3, 32, 40, seed=4)]
    d_out = unit_randn(1, t, 3, 40, seed=97).double()
    ref = log_linear_gdn_quadratic(*args)
    ref_grads = torch.autograd.grad(ref, args, d_out)
    out, grads = _fwd_bwd_poisoned(args, d_out, device, 16)
    assert rel_rms(ref, out) < 1e-5
    for name, r, o in zip(NAMES, ref_grads, grads, strict=True):
        assert rel_rms(r, o) < 1e-5, name


@pytest.mark.parametrize("nc", [2, 5, 8, 13])
def test_bucket_kernel_states_match_the_segment_tree(nc, device):
    # The forward pass's kept states H_j(c) against the chunked path's segment tree, at every
    # non-empty bucket (bit j-1 of c set).
    chunk = 16
    q, k, v, g, beta, lam = make_inputs(1, nc * chunk, 2, 16, 16, seed=nc)
    (qc, kc, vc, gc, bc, lam_c), kb, _, levels = chunk_inputs(q, k, v, g, beta, lam, chunk, torch.float64)
    terms = chunk_terms(qc, kc, vc, gc, bc)
    m, own = transitions(terms)
    expect = torch.zeros(1, 1 << levels, levels, 2, 16, 16, dtype=torch.float64)
    for j, carried in enumerate(bucket_states(m, own, levels), start=1):
        half = 1 << (j - 1)
        view = expect[:, :, j - 1].view(1, (1 << levels) // (2 * half), 2, half, 2, 16, 16)
        view[:, :, 1] = carried
    expect = expect[:, :nc].permute(0, 3, 1, 2, 4, 5).reshape(2, nc, levels, 16, 16)

    def by_head(x, axis):
        return _by_head(x, axis).float().to(device)

    lamw = by_head(lam_c[..., kb + 1 : kb + 1 + levels], 3)
    decay = by_head(terms.decay[..., None, None], 2).reshape(2, nc)
    with poisoned_allocations():
        _, states = buckets.bucket_reads(
            by_head(terms.qe, 3),
            by_head(terms.w, 2),
            by_head(terms.k_end, 3),
            by_head(terms.u0, 2),
            decay,
            lamw,
            keep_states=True,
            dot_prec="ieee",
        )
    nonempty = torch.tensor([[(c >> (j - 1)) & 1 == 1 for j in range(1, levels + 1)] for c in range(nc)])
    got = states.cpu()[:, nonempty]
    assert not got.isnan().any()
    assert rel_rms(expect[:, nonempty], got) < 1e-5


def test_triton_bfloat16(device):
    args = make_inputs(1, 200, 2, 16, 16, seed=11)
    ref = log_linear_gdn_quadratic(*args)
    b16 = [x.to(device=device, dtype=torch.bfloat16) for x in args]
    out = log_linear_gdn(*b16, chunk_size=16)
    assert out.dtype == torch.bfloat16
    assert rel_rms(ref, out.float().cpu()) < 2e-2


def test_triton_computes_in_float32_under_autocast(device):
    # A bf16 training step's autocast must not turn the chunk terms' products into bf16 (nor hand
    # the kernels mixed dtypes): the op and the chunked path keep float32 accuracy inside it.
    args = make_inputs(1, 100, 2, 16, 16, seed=12)
    ref = log_linear_gdn_quadratic(*args)
    f32 = [x.float().to(device) for x in args]
    with torch.autocast(device, dtype=torch.bfloat16):
        out = log_linear_gdn(*f32, chunk_size=16)
        chunked = log_linear_gdn_chunked(*f32, chunk_size=16)
    assert rel_rms(ref, out.cpu()) < 1e-5
    assert rel_rms(ref, chunked.cpu()) < 1e-5


def test_fits_kernels_is_the_op_s_own_check():
    # The mixer picks the op by this predicate; every key dim it accepts, the op accepts.
    assert [d for d in range(1, 130) if fits_kernels(d)] == [16, 32, 64, 128]
    args = [x.float() for x in make_inputs(1, 40, 2, 48, 8)]
    with pytest.raises(ValueError, match="got 48"):
        log_linear_gdn(*args)


def test_triton_rejects_bad_arguments():
    args = make_inputs(1, 40, 2, 16, 8)
    with pytest.raises(TypeError, match="float16, bfloat16 or float32"):
        log_linear_gdn(*args)  # float64
    f32 = [x.float() for x in args]
    with pytest.raises(ValueError, match="chunk_size must be a power of two >= 16"):
        log_linear_gdn(*f32, chunk_size=8)
    narrow = make_inputs(1, 40, 2, 12, 8)
    with pytest.raises(ValueError, match="key head dim must be a power of two >= 16, got 12"):
        log_linear_gdn(*(x.float() for x in narrow))
    with pytest.raises(ValueError, match="lam must have shape"):
        log_linear_gdn(*f32[:5], f32[5][:, :, :1])
    with pytest.raises(ValueError, match="dot_precision must be 'ieee' or 'tf32', got 'tf64'"):
        log_linear_gdn(*f32, dot_precision="tf64")
