"""SwiGLU kernels against the plain-PyTorch reference: forward, backward, custom op, torch.compile."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.swiglu import naive, swiglu
from redpajama.kernels.swiglu.swiglu import BLOCK_H

# Leading shapes and H: H=2816 is the 468m model's (not a multiple of the 1024 block), 100 and 7
# are awkward, T=63 rows.
SHAPES = [((3,), 2816), ((2, 63), 100), ((5,), 7), ((1, 3, 4), BLOCK_H)]


def _fwd_bwd(fn, gate_up, d_out):
    x = gate_up.detach().clone().requires_grad_()
    out = fn(x)
    out.backward(d_out)
    return out.detach(), x.grad


@pytest.mark.parametrize("lead, h", SHAPES)
def test_matches_naive_float32(lead, h, device):
    gate_up = unit_randn(*lead, 2 * h, device=device, seed=1)
    d_out = unit_randn(*lead, h, device=device, seed=2)
    ref_out, ref_grad = _fwd_bwd(naive.swiglu, gate_up, d_out)
    with poisoned_allocations():
        out, grad = _fwd_bwd(swiglu, gate_up, d_out)
    assert out.shape == (*lead, h) and out.dtype == torch.float32 and out.is_contiguous()
    assert grad.shape == gate_up.shape
    assert rel_rms(ref_out, out) < 1e-5
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32_reference(dtype, device):
    # One rounding of the float32 result to the output dtype: about its epsilon in relative RMS.
    gate_up = unit_randn(7, 2 * 100, device=device, seed=3)
    d_out = unit_randn(7, 100, device=device, seed=4)
    ref_out, ref_grad = _fwd_bwd(naive.swiglu, gate_up, d_out)
    with poisoned_allocations():
        out, grad = _fwd_bwd(swiglu, gate_up.to(dtype), d_out.to(dtype))
    assert out.dtype == dtype and grad.dtype == dtype
    assert rel_rms(ref_out, out) < 1e-2
    assert rel_rms(ref_grad, grad) < 1e-2


def test_non_contiguous_grad_output(device):
    gate_up = unit_randn(6, 2 * 7, device=device, seed=5)
    d_out = unit_randn(7, 6, device=device, seed=6).t()  # (6, 7), transposed strides
    ref_out, ref_grad = _fwd_bwd(naive.swiglu, gate_up, d_out)
    _, grad = _fwd_bwd(swiglu, gate_up, d_out)
    assert rel_rms(ref_grad, grad) < 1e-5


def test_opcheck(device):
    gate_up = unit_randn(3, 2 * 7, device=device, seed=7).requires_grad_()
    torch.library.opcheck(torch.ops.redpajama.swiglu.default, (gate_up,))
    d_out = unit_randn(3, 7, device=device, seed=8)
    torch.library.opcheck(torch.ops.redpajama.swiglu_bwd.default, (d_out, gate_up.detach()))


def test_compiles_without_graph_break(device):
    # fullgraph=True fails on any graph break; inductor treats the custom op as an opaque call.
    torch._dynamo.reset()
    compiled = torch.compile(swiglu, fullgraph=True)
    gate_up = unit_randn(2, 5, 2 * 7, device=device, seed=9)
    d_out = unit_randn(2, 5, 7, device=device, seed=10)
    ref_out, ref_grad = _fwd_bwd(naive.swiglu, gate_up, d_out)
    out, grad = _fwd_bwd(compiled, gate_up, d_out)
    assert rel_rms(ref_out, out) < 1e-5
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize(
    "gate_up, error, match",
    [
        (torch.ones(3, 5), ValueError, "even"),
        (torch.ones(3, 8, dtype=torch.float64), TypeError, "float64"),
        (torch.ones(8, 3).t(), ValueError, "contiguous"),
        (torch.ones(3, 0), ValueError, "non-zero"),
    ],
)
def test_rejects_bad_arguments(gate_up, error, match):
    with pytest.raises(error, match=match):
        swiglu(gate_up)
