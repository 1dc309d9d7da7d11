"""RoPE-on-fused-QKV kernels against the plain-PyTorch reference and the model's `apply_rope`."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.rope import naive, rope_qkv
from redpajama.kernels.rope.rope_qkv import rope_qkv_bwd, rope_qkv_fwd
from redpajama.training.model.layers import apply_rope, rope_tables

# (B, T, n_heads, n_kv_heads, D): T=63 and 500 awkward, GQA (n_heads != n_kv), D=16 and 64, and a
# D whose half (3) is not a power of two.
SHAPES = [(2, 63, 4, 2, 16), (1, 500, 4, 4, 64), (2, 5, 3, 1, 6)]


def _tables(t: int, d: int, device: str):
    # T_max > T: only the first T rows may be used.
    cos, sin = rope_tables(t + 5, d, theta=10000.0)
    return cos.to(device), sin.to(device)


def _grads(b, t, h, g, d, device, layout):
    """dq, dk, dv (B, T, H, D) as the attention backward gives them, or with other strides."""
    out = []
    for i, n in enumerate((h, g, g)):
        if layout == "bhtd":  # SDPA's (B, H, T, D) seen through the transpose back to (B, T, H, D)
            out.append(unit_randn(b, n, t, d, device=device, seed=20 + i).transpose(1, 2))
        elif layout == "strided_d":  # every other channel: no unit stride anywhere
            out.append(unit_randn(b, t, n, 2 * d, device=device, seed=20 + i)[..., ::2])
        else:
            out.append(unit_randn(b, t, n, d, device=device, seed=20 + i))
    return out


def _fwd_bwd(fn, qkv, cos, sin, h, g, grads):
    x = qkv.detach().clone().requires_grad_()
    outs = fn(x, cos, sin, h, g)
    torch.autograd.backward(outs, grads)
    return [o.detach() for o in outs], x.grad


@pytest.mark.parametrize("b, t, h, g, d", SHAPES)
def test_matches_naive_float32(b, t, h, g, d, device):
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=1)
    cos, sin = _tables(t, d, device)
    grads = _grads(b, t, h, g, d, device, "bhtd")
    ref_outs, ref_grad = _fwd_bwd(naive.rope_qkv, qkv, cos, sin, h, g, grads)
    with poisoned_allocations():
        outs, grad = _fwd_bwd(rope_qkv, qkv, cos, sin, h, g, grads)
    for name, ref, out, n in zip("qkv", ref_outs, outs, (h, g, g), strict=True):
        assert out.shape == (b, t, n, d) and out.is_contiguous(), name
        assert rel_rms(ref, out) < 1e-5, name
    assert grad.shape == qkv.shape
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize("layout", ["contiguous", "strided_d"])
def test_backward_takes_any_strides(layout, device):
    b, t, h, g, d = 2, 9, 4, 2, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=2)
    cos, sin = _tables(t, d, device)
    grads = _grads(b, t, h, g, d, device, layout)
    _, ref_grad = _fwd_bwd(naive.rope_qkv, qkv, cos, sin, h, g, grads)
    with poisoned_allocations():
        grad = rope_qkv_bwd(*grads, cos, sin)
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize("block_t", [1, 4])
def test_gpu_token_blocking(block_t, device):
    # The CPU default packs 32 tokens per program; a GPU packs 1 at the 468m width. Cover small
    # blocks here too, with a token count (2 * 11) that leaves the last block partly masked.
    b, t, h, g, d = 2, 11, 2, 1, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=3)
    cos, sin = _tables(t, d, device)
    grads = _grads(b, t, h, g, d, device, "bhtd")
    ref_outs, ref_grad = _fwd_bwd(naive.rope_qkv, qkv, cos, sin, h, g, grads)
    with poisoned_allocations():
        outs = rope_qkv_fwd(qkv, cos, sin, h, g, block_t=block_t)
        grad = rope_qkv_bwd(*grads, cos, sin, block_t=block_t)
    for ref, out in zip(ref_outs, outs, strict=True):
        assert rel_rms(ref, out) < 1e-5
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32_reference(dtype, device):
    b, t, h, g, d = 1, 63, 4, 2, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=4)
    cos, sin = _tables(t, d, device)
    grads = _grads(b, t, h, g, d, device, "bhtd")
    ref_outs, ref_grad = _fwd_bwd(naive.rope_qkv, qkv, cos, sin, h, g, grads)
    outs, grad = _fwd_bwd(rope_qkv, qkv.to(dtype), cos, sin, h, g, [x.to(dtype) for x in grads])
    for ref, out in zip(ref_outs, outs, strict=True):
        assert out.dtype == dtype and rel_rms(ref, out) < 1e-2
    assert grad.dtype == dtype and rel_rms(ref_grad, grad) < 1e-2


def test_naive_matches_model_apply_rope():
    # The reference must be the rotation the model uses (training/model/layers.py), in float32.
    b, t, h, g, d = 2, 63, 4, 2, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, seed=5)
    cos, sin = _tables(t, d, "cpu")
    q, k, v = naive.rope_qkv(qkv, cos, sin, h, g)
    q_in, k_in, v_in = qkv.split([h * d, g * d, g * d], dim=-1)
    assert rel_rms(apply_rope(q_in.reshape(b, t, h, d), cos[:t], sin[:t]), q) < 1e-6
    assert rel_rms(apply_rope(k_in.reshape(b, t, g, d), cos[:t], sin[:t]), k) < 1e-6
    assert torch.equal(v_in.reshape(b, t, g, d), v)


def test_opcheck(device):
    b, t, h, g, d = 1, 7, 2, 1, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=6).requires_grad_()
    cos, sin = _tables(t, d, device)
    torch.library.opcheck(torch.ops.redpajama.rope_qkv.default, (qkv, cos, sin, h, g))
    grads = _grads(b, t, h, g, d, device, "bhtd")
    torch.library.opcheck(torch.ops.redpajama.rope_qkv_bwd.default, (*grads, cos, sin))


def test_compiles_without_graph_break(device):
    torch._dynamo.reset()
    b, t, h, g, d = 1, 7, 2, 1, 16
    compiled = torch.compile(rope_qkv, fullgraph=True)
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=7)
    cos, sin = _tables(t, d, device)
    grads = _grads(b, t, h, g, d, device, "bhtd")
    ref_outs, ref_grad = _fwd_bwd(naive.rope_qkv, qkv, cos, sin, h, g, grads)
    outs, grad = _fwd_bwd(compiled, qkv, cos, sin, h, g, grads)
    for ref, out in zip(ref_outs, outs, strict=True):
        assert rel_rms(ref, out) < 1e-5
    assert rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize(
    "qkv_shape, table_shape, heads, match",
    [
        ((1, 4, 30), (4, 4), (2, 1), r"last dim 30 must be \(n_heads \+ 2\*n_kv_heads\) \* D = 4 \* D"),
        ((1, 4, 36), (4, 4), (2, 1), "D even"),  # 36 = 4 * 9: odd D
        ((1, 4, 32), (3, 4), (2, 1), r"T_max >= 4"),
        ((1, 4, 32), (4, 3), (2, 1), r"D/2 = 4"),
        ((4, 32), (4, 4), (2, 1), "must be"),
        ((1, 4, 32), (4, 4), (0, 1), "positive"),
    ],
)
def test_rejects_bad_arguments(qkv_shape, table_shape, heads, match):
    qkv = torch.ones(qkv_shape)
    cos = sin = torch.ones(table_shape)
    with pytest.raises(ValueError, match=match):
        rope_qkv(qkv, cos, sin, *heads)


def test_rejects_non_contiguous_and_wrong_dtypes():
    cos = sin = torch.ones(4, 4)
    with pytest.raises(ValueError, match="contiguous"):
        rope_qkv(torch.ones(1, 32, 4).transpose(1, 2), cos, sin, 2, 1)
    with pytest.raises(TypeError, match="float64"):
        rope_qkv(torch.ones(1, 4, 32, dtype=torch.float64), cos, sin, 2, 1)
    with pytest.raises(TypeError, match="cos must be float32"):
        rope_qkv(torch.ones(1, 4, 32), cos.half(), sin, 2, 1)


def test_unused_output_gets_zero_gradient(device):
    # Autograd hands the backward op zeros for an output that took no part in the loss (here v).
    b, t, h, g, d = 1, 8, 2, 1, 16
    qkv = unit_randn(b, t, (h + 2 * g) * d, device=device, seed=8)
    cos, sin = _tables(t, d, device)
    grads = [unit_randn(b, t, h, d, device=device, seed=9), unit_randn(b, t, g, d, device=device, seed=10)]

    def loss(fn):
        x = qkv.detach().clone().requires_grad_()
        q, k, _ = fn(x, cos, sin, h, g)
        ((q * grads[0]).sum() + (k * grads[1]).sum()).backward()
        return x.grad

    grad = loss(rope_qkv)
    assert rel_rms(loss(naive.rope_qkv), grad) < 1e-5
    assert (grad[..., (h + g) * d :] == 0).all()
