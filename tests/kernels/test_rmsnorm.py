"""RMSNorm kernels against the plain-PyTorch reference: forward, backward, custom ops, torch.compile."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.rmsnorm import add_rmsnorm, naive, rmsnorm
from redpajama.kernels.rmsnorm.rmsnorm import CPU_PROGRAMS

# Leading shapes and D: D=1024 is the model's, 100 and 7 are awkward (not powers of two), 1000 is
# just under a block. (2, 63) gives 126 rows, many more than the backward's CPU_PROGRAMS programs.
SHAPES = [((3,), 1024), ((2, 63), 100), ((5,), 7), ((1, 3, 4), 1000), ((4 * CPU_PROGRAMS + 3,), 7)]
EPS = 1e-5


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def _grads(*tensors):
    return [t.grad for t in tensors]


def _rmsnorm_fwd_bwd(fn, x, w, d_out):
    x, w = _leaves(x, w)
    out = fn(x, w, EPS)
    out.backward(d_out)
    return out.detach(), _grads(x, w)


def _add_rmsnorm_fwd_bwd(fn, x, y, w, a, b):
    """loss = (h * a).sum() + (out * b).sum(); a None leaves h out of the loss (no d_h), b None out."""
    x, y, w = _leaves(x, y, w)
    h, out = fn(x, y, w, EPS)
    loss = 0
    if a is not None:
        loss = loss + (h * a).sum()
    if b is not None:
        loss = loss + (out * b).sum()
    loss.backward()
    return h.detach(), out.detach(), _grads(x, y, w)


def _inputs(lead, d, seed, device):
    x = unit_randn(*lead, d, device=device, seed=seed)
    y = unit_randn(*lead, d, device=device, seed=seed + 1)
    w = unit_randn(d, device=device, seed=seed + 2)
    a = unit_randn(*lead, d, device=device, seed=seed + 3)
    b = unit_randn(*lead, d, device=device, seed=seed + 4)
    return x, y, w, a, b


@pytest.mark.parametrize("lead, d", SHAPES)
def test_rmsnorm_matches_naive_float32(lead, d, device):
    x, _, w, _, d_out = _inputs(lead, d, 1, device)
    ref_out, ref_grads = _rmsnorm_fwd_bwd(naive.rmsnorm, x, w, d_out)
    with poisoned_allocations():
        out, grads = _rmsnorm_fwd_bwd(rmsnorm, x, w, d_out)
    assert out.shape == (*lead, d) and out.dtype == torch.float32 and out.is_contiguous()
    assert rel_rms(ref_out, out) < 1e-5
    for ref, got in zip(ref_grads, grads, strict=True):
        assert got.shape == ref.shape and got.dtype == ref.dtype
        assert rel_rms(ref, got) < 1e-5


@pytest.mark.parametrize("lead, d", SHAPES)
@pytest.mark.parametrize("uses", ["out", "both"])
def test_add_rmsnorm_matches_naive_float32(lead, d, uses, device):
    # "out": only the norm feeds the loss (backward without d_h); "both": h does too (with d_h).
    x, y, w, a, b = _inputs(lead, d, 11, device)
    a = a if uses == "both" else None
    ref_h, ref_out, ref_grads = _add_rmsnorm_fwd_bwd(naive.add_rmsnorm, x, y, w, a, b)
    with poisoned_allocations():
        h, out, grads = _add_rmsnorm_fwd_bwd(add_rmsnorm, x, y, w, a, b)
    assert h.shape == out.shape == (*lead, d) and h.is_contiguous() and out.is_contiguous()
    assert torch.equal(h, ref_h)
    assert rel_rms(ref_out, out) < 1e-5
    for ref, got in zip(ref_grads, grads, strict=True):
        assert got.shape == ref.shape and got.dtype == ref.dtype
        assert rel_rms(ref, got) < 1e-5


def test_add_rmsnorm_only_h_used(device):
    # out unused: x and y get the loss's gradient of h, weight none (as with the reference).
    x, y, w, a, _ = _inputs((3,), 7, 21, device)
    _, _, ref_grads = _add_rmsnorm_fwd_bwd(naive.add_rmsnorm, x, y, w, a, None)
    _, _, grads = _add_rmsnorm_fwd_bwd(add_rmsnorm, x, y, w, a, None)
    assert ref_grads[2] is None and grads[2] is None
    assert rel_rms(ref_grads[0], grads[0]) < 1e-5 and rel_rms(ref_grads[1], grads[1]) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32_reference(dtype, device):
    # The training case: a half-precision stream with float32 weights. Roundings of h, the
    # normalized row and the output to the stream's dtype: about its epsilon in relative RMS.
    x, y, w, a, b = _inputs((2, 9), 100, 31, device)
    ref_h, ref_out, ref_grads = _add_rmsnorm_fwd_bwd(naive.add_rmsnorm, x, y, w, a, b)
    with poisoned_allocations():
        h, out, grads = _add_rmsnorm_fwd_bwd(
            add_rmsnorm, x.to(dtype), y.to(dtype), w, a.to(dtype), b.to(dtype)
        )
    assert h.dtype == out.dtype == grads[0].dtype == grads[1].dtype == dtype
    assert grads[2].dtype == torch.float32
    assert rel_rms(ref_h, h) < 1e-2 and rel_rms(ref_out, out) < 1e-2
    for ref, got in zip(ref_grads, grads, strict=True):
        assert rel_rms(ref, got) < 1e-2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_matches_naive_half_precision(dtype, device):
    # Same rounding order as the reference: h bit-exact, out within a few roundings. The CPU
    # interpreter truncates float32 -> bfloat16 (a GPU rounds to nearest even, as PyTorch does):
    # there bf16 h is only within one rounding, and out's three truncations share a sign (a bias).
    x, y, w, _, _ = _inputs((4, 5), 100, 41, device)
    x, y = x.to(dtype), y.to(dtype)
    ref_h, ref_out = naive.add_rmsnorm(x, y, w, EPS)
    h, out = add_rmsnorm(x, y, w, EPS)
    if dtype == torch.float16 or device == "cuda":
        assert torch.equal(h, ref_h)
    tol = 1e-2 if dtype == torch.float16 or device == "cuda" else 2e-2
    assert rel_rms(ref_h, h) < tol
    assert rel_rms(ref_out, out) < tol
    assert rel_rms(naive.rmsnorm(x, w, EPS), rmsnorm(x, w, EPS)) < tol


def test_non_contiguous_grad_output(device):
    x, _, w, _, _ = _inputs((6,), 7, 51, device)
    d_out = unit_randn(7, 6, device=device, seed=56).t()  # (6, 7), transposed strides
    ref_out, ref_grads = _rmsnorm_fwd_bwd(naive.rmsnorm, x, w, d_out)
    _, grads = _rmsnorm_fwd_bwd(rmsnorm, x, w, d_out)
    for ref, got in zip(ref_grads, grads, strict=True):
        assert rel_rms(ref, got) < 1e-5


def test_opcheck(device):
    x, y, w, a, b = _inputs((3,), 7, 61, device)
    xg, yg, wg = _leaves(x, y, w)
    torch.library.opcheck(torch.ops.redpajama.rmsnorm.default, (xg, wg, EPS))
    torch.library.opcheck(torch.ops.redpajama.add_rmsnorm.default, (xg, yg, wg, EPS))
    rstd = torch.rsqrt(x.pow(2).mean(-1) + EPS)
    torch.library.opcheck(torch.ops.redpajama.rmsnorm_bwd.default, (b, a, x, w, rstd))
    torch.library.opcheck(torch.ops.redpajama.rmsnorm_bwd.default, (b, None, x, w, rstd))


def test_compiles_without_graph_break(device):
    # fullgraph=True fails on any graph break; inductor treats the custom ops as opaque calls.
    torch._dynamo.reset()
    x, y, w, a, b = _inputs((2, 5), 7, 71, device)

    def block(x, y, w, eps):
        h, out = add_rmsnorm(x, y, w, eps)
        return h, rmsnorm(out, w, eps)

    def ref_block(x, y, w, eps):
        h, out = naive.add_rmsnorm(x, y, w, eps)
        return h, naive.rmsnorm(out, w, eps)

    compiled = torch.compile(block, fullgraph=True)
    ref_h, ref_out, ref_grads = _add_rmsnorm_fwd_bwd(ref_block, x, y, w, a, b)
    h, out, grads = _add_rmsnorm_fwd_bwd(compiled, x, y, w, a, b)
    assert rel_rms(ref_h, h) < 1e-5 and rel_rms(ref_out, out) < 1e-5
    for ref, got in zip(ref_grads, grads, strict=True):
        assert rel_rms(ref, got) < 1e-5


def test_registered_fallbacks_compile_a_residual_stream(device):
    # What Transformer.compile does with fused norms: our ops get explicit Inductor fallbacks
    # (kernels/_inductor.py), then a stream where every add + norm reads the previous one's output
    # (directly and through a "module") compiles in one graph and matches the reference.
    from torch._inductor.lowering import lowerings

    from redpajama.kernels._inductor import register_inductor_fallbacks

    register_inductor_fallbacks()
    register_inductor_fallbacks()  # idempotent: ops already lowered are left alone
    for name in ("rmsnorm", "add_rmsnorm", "rmsnorm_bwd"):
        assert getattr(torch.ops.redpajama, name).default in lowerings
    torch._dynamo.reset()
    x, _, w, _, b = _inputs((3,), 16, 81, device)
    mix = unit_randn(16, 16, device=device, seed=82) / 4

    def stream(x, w, add_norm, norm):
        h, out = x, norm(x, w, 1e-5)
        for _ in range(6):
            h, out = add_norm(h, torch.tanh(out @ mix), w, 1e-5)
        return out

    xs = [x.detach().clone().requires_grad_() for _ in range(2)]
    ref = stream(xs[0], w, naive.add_rmsnorm, naive.rmsnorm)
    got = torch.compile(stream, fullgraph=True)(xs[1], w, add_rmsnorm, rmsnorm)
    (ref * b).sum().backward()
    (got * b).sum().backward()
    assert rel_rms(ref, got) < 1e-5
    assert rel_rms(xs[0].grad, xs[1].grad) < 1e-5


def _ones(*shape, **kw):
    return torch.ones(*shape, **kw)


@pytest.mark.parametrize(
    "x, y, weight, eps, error, match",
    [
        (_ones(3, 8), _ones(3, 7), _ones(8), EPS, ValueError, r"y must have x's shape \(3, 8\)"),
        (_ones(3, 8), _ones(3, 8, dtype=torch.bfloat16), _ones(8), EPS, TypeError, "bfloat16"),
        (_ones(3, 8, dtype=torch.float64), None, _ones(8), EPS, TypeError, "float64"),
        (_ones(3, 8), None, _ones(8, dtype=torch.float64), EPS, TypeError, "weight.*float64"),
        (_ones(8, 3).t(), None, _ones(8), EPS, ValueError, "contiguous"),
        (_ones(3, 8), _ones(8, 3).t(), _ones(8), EPS, ValueError, "y must be contiguous"),
        (_ones(3, 8), None, _ones(7), EPS, ValueError, r"\(8,\).*\(7,\)"),
        (_ones(3, 8), None, _ones(1, 8), EPS, ValueError, r"\(1, 8\)"),
        (_ones(3, 0), None, _ones(0), EPS, ValueError, "8192"),
        (_ones(1, 8193), None, _ones(8193), EPS, ValueError, "8193"),
        (_ones(3, 8), None, _ones(8), -1.0, ValueError, "-1.0"),
        (_ones(3, 8), None, _ones(8), "1e-5", TypeError, "str"),
        ([1.0] * 8, None, _ones(8), EPS, TypeError, "list"),
    ],
)
def test_rejects_bad_arguments(x, y, weight, eps, error, match):
    with pytest.raises(error, match=match):
        if y is None:
            rmsnorm(x, weight, eps)
        else:
            add_rmsnorm(x, y, weight, eps)
