"""Mamba-2 SSD: scan vs quadratic form, the PyTorch chunked path, its hand-written backward and the
Triton forward and backward against them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.ssd import chunked, naive, ssd
from redpajama.kernels.ssd.chunked import ssd_chunked, ssd_chunked_bwd
from redpajama.kernels.ssd.ssd import BWD_DBC_BLOCK_N, BWD_SCAN_BLOCK_N

NAMES = ("x", "dt", "A", "Bm", "Cm", "D")
# (B, T, H, G, P, N): T=1, 63 and 130 straddle chunk boundaries; P, N not powers of two.
SHAPES = [(2, 1, 4, 4, 8, 16), (1, 63, 4, 2, 12, 8), (2, 130, 4, 4, 16, 10), (1, 130, 4, 2, 8, 16)]
# For the Triton kernels in the (slow) interpreter with chunk 16: T = 1, 63, 64, 65 and 200 around
# the chunk boundaries, G < H, P and N not powers of two.
TRITON_SHAPES = [
    (2, 1, 4, 2, 12, 10),
    (1, 63, 4, 2, 12, 8),
    (2, 64, 4, 4, 8, 16),
    (2, 65, 2, 1, 5, 10),
    (1, 200, 2, 1, 12, 10),
]


def make_inputs(b, t, h, g, p, n, dtype=torch.float64, device="cpu", seed=0):
    """Unit-scale x, B, C, D; dt = softplus(N(-1, 1)) (about 0.1-1.5, the usual range); A = -exp(N(0, .5))."""
    x = unit_randn(b, t, h, p, seed=seed + 1)
    dt = F.softplus(unit_randn(b, t, h, seed=seed + 2) - 1)
    a = -torch.exp(0.5 * unit_randn(h, seed=seed + 3))
    bm, cm = unit_randn(b, t, g, n, seed=seed + 4), unit_randn(b, t, g, n, seed=seed + 5)
    d = unit_randn(h, seed=seed + 6)
    return [v.to(device=device, dtype=dtype) for v in (x, dt, a, bm, cm, d)]


def assert_close(ref, out, tol, name=""):
    """rel_rms(ref, out) < tol; where the reference is exactly zero (dA at T = 1: a single token never
    decays; dC, dD when only the final state has a gradient), the output must be zero to within tol."""
    if ref.abs().max() == 0:
        assert out.abs().max().item() < tol, name
    else:
        assert rel_rms(ref, out.cpu()) < tol, name


def fwd_bwd(fn, inputs, d_y, **kwargs):
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    y = fn(*leaves, **kwargs)
    y.backward(d_y)
    return y.detach(), [v.grad for v in leaves]


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_recurrent_equals_quadratic(shape):
    inputs = make_inputs(*shape)
    d_y = unit_randn(*inputs[0].shape, seed=9).double()
    ref, ref_grads = fwd_bwd(naive.ssd_recurrent, inputs, d_y)
    out, grads = fwd_bwd(naive.ssd_quadratic, inputs, d_y)
    assert rel_rms(ref, out) < 1e-12
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert_close(r, g, 1e-12, name)


def test_recurrent_final_state_is_the_state():
    # The final state, read out with C, gives the last output: y_T-1 = C^T h + D x.
    b, t, h, g, p, n = 2, 9, 4, 2, 5, 3
    x, dt, a, bm, cm, d = make_inputs(b, t, h, g, p, n)
    y, final = naive.ssd_recurrent(x, dt, a, bm, cm, d, return_final_state=True)
    c_last = naive.expand_groups(cm, h)[:, -1]
    assert rel_rms(y[:, -1], torch.einsum("bhn,bhnp->bhp", c_last, final) + d[:, None] * x[:, -1]) < 1e-12


@pytest.mark.parametrize("chunk_size", [16, 64])
@pytest.mark.parametrize("shape", [*SHAPES, (1, 500, 4, 2, 16, 16)])
def test_chunked_equals_naive_float64(shape, chunk_size):
    inputs = make_inputs(*shape)
    d_y = unit_randn(*inputs[0].shape, seed=9).double()
    ref, ref_grads = fwd_bwd(naive.ssd_quadratic, inputs, d_y)
    out, grads = fwd_bwd(ssd_chunked, inputs, d_y, chunk_size=chunk_size)
    assert rel_rms(ref, out) < 1e-12
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert_close(r, g, 1e-12, name)


def test_chunked_float32_and_final_state():
    inputs = make_inputs(1, 130, 4, 2, 8, 16)
    ref, ref_final = naive.ssd_recurrent(*inputs, return_final_state=True)
    out, final = ssd_chunked(*[v.float() for v in inputs], chunk_size=64, return_final_state=True)
    assert out.dtype == torch.float32
    assert rel_rms(ref, out) < 1e-5
    assert rel_rms(ref_final, final) < 1e-5


def loss_with_final(fn, inputs, d_y, d_final, **kwargs):
    """Forward + backward of sum(y * d_y) + sum(final * d_final) (d_y None: the final state alone).
    Returns (y, final, gradients); an input the loss does not reach (C, D without d_y) gets zeros."""
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    y, final = fn(*leaves, return_final_state=True, **kwargs)
    loss = (final * d_final).sum()
    if d_y is not None:
        loss = loss + (y * d_y).sum()
    loss.backward()
    grads = [torch.zeros_like(v) if v.grad is None else v.grad for v in leaves]
    return y.detach(), final.detach(), grads


@pytest.mark.parametrize("shape", [*SHAPES, (2, 65, 6, 2, 5, 7)])
@pytest.mark.parametrize("with_final", [False, True])
def test_chunked_bwd_equals_autograd_float64(shape, with_final):
    # The hand-written backward (the formulas of the Triton backward) against autograd.
    inputs = make_inputs(*shape)
    b, _, h, _, p, n = shape
    d_y = unit_randn(*inputs[0].shape, seed=9).double()
    d_final = unit_randn(b, h, n, p, seed=10).double() if with_final else torch.zeros(b, h, n, p).double()
    _, _, ref_grads = loss_with_final(naive.ssd_recurrent, inputs, d_y, d_final)
    grads = ssd_chunked_bwd(*inputs, d_y, d_final if with_final else None, chunk_size=16)
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert_close(r, g, 1e-12, name)


@pytest.mark.parametrize(
    "shape, chunk_size",
    [*((s, 16) for s in TRITON_SHAPES), ((2, 130, 4, 4, 16, 10), 64), ((1, 300, 2, 1, 16, 16), 64)],
)
def test_triton_matches_naive_float32(shape, chunk_size, device):
    inputs = make_inputs(*shape)
    d_y = unit_randn(*inputs[0].shape, seed=9).double()
    ref, ref_grads = fwd_bwd(naive.ssd_quadratic, inputs, d_y)
    with poisoned_allocations():
        out, grads = fwd_bwd(
            ssd, [v.float().to(device) for v in inputs], d_y.float().to(device), chunk_size=chunk_size
        )
    assert out.shape == inputs[0].shape and out.dtype == torch.float32
    assert rel_rms(ref, out.cpu()) < 1e-5
    for name, r, g, v in zip(NAMES, ref_grads, grads, inputs, strict=True):
        assert g.shape == v.shape and g.dtype == torch.float32, name
        assert_close(r, g, 1e-5, name)


@pytest.mark.parametrize("shape", [TRITON_SHAPES[0], TRITON_SHAPES[3], TRITON_SHAPES[4]])
@pytest.mark.parametrize("with_d_y", [True, False])
def test_triton_final_state_and_its_gradient(shape, with_d_y, device):
    # The final state's gradient enters the reverse state passing; without d_y it is the only one.
    inputs = make_inputs(*shape)
    b, _, h, _, p, n = shape
    d_y = unit_randn(*inputs[0].shape, seed=9).double() if with_d_y else None
    d_final = unit_randn(b, h, n, p, seed=10).double()
    ref, ref_final, ref_grads = loss_with_final(naive.ssd_recurrent, inputs, d_y, d_final)

    def on_device(v):
        return None if v is None else v.float().to(device)

    with poisoned_allocations():
        y, final, grads = loss_with_final(
            ssd, [on_device(v) for v in inputs], on_device(d_y), on_device(d_final), chunk_size=16
        )
    assert final.shape == (b, h, n, p) and final.dtype == torch.float32
    assert rel_rms(ref, y.cpu()) < 1e-5
    assert rel_rms(ref_final, final.cpu()) < 1e-5
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert_close(r, g.cpu(), 1e-5, name)


def test_triton_backward_does_not_recompute(monkeypatch, device):
    # The backward is the Triton kernels: the PyTorch chunked path, autograd.grad (the old
    # recomputation differentiated through it) and einsum (every PyTorch path's workhorse) must not run.
    def fail(*args, **kwargs):
        raise AssertionError("the SSD backward went through PyTorch")

    inputs = [v.float().to(device) for v in make_inputs(1, 40, 4, 2, 8, 16)]
    d_y = unit_randn(*inputs[0].shape, seed=9).to(device)
    ref = fwd_bwd(naive.ssd_quadratic, inputs, d_y)[1]
    for module, name in ((chunked, "ssd_chunked"), (chunked, "ssd_chunked_bwd"), (torch, "einsum")):
        monkeypatch.setattr(module, name, fail)
    monkeypatch.setattr(torch.autograd, "grad", fail)
    grads = fwd_bwd(ssd, inputs, d_y, chunk_size=16)[1]
    monkeypatch.undo()
    for name, r, g in zip(NAMES, ref, grads, strict=True):
        assert_close(r.cpu(), g.cpu(), 1e-5, name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_half_precision_inputs(dtype, device):
    # Inputs rounded to 16 bits, math in float32: error about the dtype's epsilon, dtypes preserved.
    inputs = [v.to(dtype).double() for v in make_inputs(1, 63, 4, 2, 8, 16)]
    d_y = unit_randn(*inputs[0].shape, seed=9).to(dtype).double()
    ref, ref_grads = fwd_bwd(naive.ssd_quadratic, inputs, d_y)
    out, grads = fwd_bwd(
        ssd, [v.to(device=device, dtype=dtype) for v in inputs], d_y.to(device, dtype), chunk_size=16
    )
    assert out.dtype == dtype
    assert rel_rms(ref, out.cpu()) < 1e-2
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert g.dtype == dtype, name
        assert rel_rms(r, g.cpu()) < 1e-2, name


def test_triton_backward_walks_the_state_in_blocks(device):
    # N = 72: the backward kernels walk N in blocks (BWD_DBC_BLOCK_N, BWD_SCAN_BLOCK_N), the last
    # one part-masked; the sums over N (C B^T, dS^T B, the d(a) terms) cross the blocks.
    shape = (1, 40, 2, 1, 12, 72)
    blocks = (BWD_DBC_BLOCK_N, BWD_SCAN_BLOCK_N.value)
    assert all(shape[-1] > nb and shape[-1] % nb for nb in blocks)
    inputs = make_inputs(*shape)
    d_y = unit_randn(*inputs[0].shape, seed=9).double()
    ref, ref_grads = fwd_bwd(naive.ssd_quadratic, inputs, d_y)
    with poisoned_allocations():
        _, grads = fwd_bwd(ssd, [v.float().to(device) for v in inputs], d_y.float().to(device), chunk_size=16)
    for name, r, g in zip(NAMES, ref_grads, grads, strict=True):
        assert_close(r, g.cpu(), 1e-5, name)


def test_triton_non_contiguous_inputs(device):
    inputs = make_inputs(1, 40, 4, 2, 8, 16, dtype=torch.float32, device=device)
    x_t = inputs[0].transpose(1, 2).contiguous().transpose(1, 2)  # same values, (B, H, T, P) memory
    assert not x_t.is_contiguous()
    out = ssd(x_t, *inputs[1:], chunk_size=16)
    assert rel_rms(naive.ssd_quadratic(*[v.double().cpu() for v in inputs]), out.cpu()) < 1e-5


def _ok(b=1, t=5, h=4, g=2, p=3, n=2):
    return make_inputs(b, t, h, g, p, n, dtype=torch.float32)


@pytest.mark.parametrize(
    "change, kwargs, error, match",
    [
        ({"x": torch.ones(5, 4, 3)}, {}, ValueError, r"\(B, T, H, P\)"),
        ({"dt": torch.ones(1, 5, 3)}, {}, ValueError, r"dt must be .*\(1, 5, 4\)"),
        ({"A": torch.ones(3)}, {}, ValueError, r"\(4,\)"),
        ({"Bm": torch.ones(1, 5, 3, 2), "Cm": torch.ones(1, 5, 3, 2)}, {}, ValueError, "H=4 .* G=3"),
        ({"Cm": torch.ones(1, 5, 2, 3)}, {}, ValueError, "Bm and Cm"),
        ({"D": torch.ones(4, dtype=torch.float64)}, {}, TypeError, "float64"),
        ({}, {"chunk_size": 48}, ValueError, "48"),
        ({}, {"chunk_size": 8}, ValueError, "power of two >= 16, got 8"),
    ],
)
def test_rejects_bad_arguments(change, kwargs, error, match):
    args = dict(zip(NAMES, _ok(), strict=True))
    args.update(change)
    with pytest.raises(error, match=match):
        ssd(*args.values(), **kwargs)
