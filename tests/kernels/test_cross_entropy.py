"""Cross-entropy chunk kernel against the plain-PyTorch reference: loss sum and in-place gradient."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels._testing import rel_rms, unit_randn
from redpajama.kernels.cross_entropy import cross_entropy_chunk, naive
from redpajama.kernels.cross_entropy.cross_entropy import BLOCK_V


def _targets(n: int, v: int, device: str, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, v, (n,), generator=gen).to(device)


def _run_both(logits: torch.Tensor, targets: torch.Tensor, scale: float):
    """(reference loss, reference grad in float32, our loss, our in-place grad)."""
    ref_grad = logits.float().clone()
    ref_loss = naive.cross_entropy_chunk(ref_grad, targets, scale)
    ours = logits.clone()
    loss = cross_entropy_chunk(ours, targets, scale)
    return ref_loss, ref_grad, loss, ours


# V: the 468m vocabulary (not a multiple of the 4096 block), ~256k, one block plus one, 1000, 7.
@pytest.mark.parametrize("n, v", [(3, 50304), (1, 256_003), (2, BLOCK_V + 1), (5, 1000), (4, 7)])
@pytest.mark.parametrize("logit_scale", [1.0, 30.0])
def test_matches_naive_float32(n, v, logit_scale, device):
    # logit_scale 30 gives a peaked softmax: exp of large differences must neither overflow nor
    # lose the row's max.
    logits = unit_randn(n, v, device=device, seed=1) * logit_scale
    targets = _targets(n, v, device)
    scale = 1.0 / 3.0
    ref_loss, ref_grad, loss, grad = _run_both(logits, targets, scale)
    assert loss.shape == () and loss.dtype == torch.float32
    assert rel_rms(ref_loss, loss) < 1e-5
    # Every element overwritten (in place, nothing to poison): finite, and each one close to the
    # reference, not just the RMS (a single forgotten element of a 50k row would stay unit-scale).
    assert torch.isfinite(grad).all()
    assert rel_rms(ref_grad, grad) < 1e-5
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32_reference(dtype, device):
    n, v = 4, 1000
    logits = unit_randn(n, v, device=device, seed=2).to(dtype)
    targets = _targets(n, v, device, seed=1)
    ref_loss, ref_grad, loss, grad = _run_both(logits, targets, 0.5)
    # Same input values: the loss is computed in float32 from them, the gradient rounded once.
    assert grad.dtype == dtype and torch.isfinite(grad).all()
    assert rel_rms(ref_loss, loss) < 1e-5
    assert rel_rms(ref_grad, grad) < 1e-2


def test_gradient_rows_sum_to_zero(device):
    # softmax sums to one and the one-hot to one: each row of the gradient sums to ~0.
    logits = unit_randn(3, 1000, device=device, seed=3)
    targets = _targets(3, 1000, device, seed=2)
    cross_entropy_chunk(logits, targets, 1.0)
    assert logits.sum(dim=1).abs().max() < 1e-5
    assert (logits.gather(1, targets[:, None]) < 0).all()


def test_minus_inf_logits_and_a_block_of_them(device):
    # Masked-out vocabulary entries (-inf) get probability 0, also when a whole block of the row is
    # -inf (the running max must not turn into -inf - -inf = NaN).
    n, v = 3, BLOCK_V + 5
    logits = unit_randn(n, v, device=device, seed=6)
    logits[:, :BLOCK_V] = float("-inf")
    logits[0, 7] = 2.0  # one finite value inside the first block of row 0
    targets = torch.tensor([7, BLOCK_V + 1, BLOCK_V + 4], device=device)
    ref_loss, ref_grad, loss, grad = _run_both(logits, targets, 1.0)
    assert torch.isfinite(grad).all() and torch.isfinite(loss)
    assert rel_rms(ref_loss, loss) < 1e-5
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_out_of_range_target_gives_nan_loss(device):
    logits = unit_randn(2, 10, device=device, seed=4)
    loss = cross_entropy_chunk(logits, torch.tensor([3, 10], device=device), 1.0)
    assert torch.isnan(loss)


def test_strided_targets(device):
    logits = unit_randn(4, 100, device=device, seed=5)
    targets = _targets(8, 100, device, seed=3)[::2]
    ref_loss, ref_grad, loss, grad = _run_both(logits, targets, 1.0)
    assert rel_rms(ref_loss, loss) < 1e-5 and rel_rms(ref_grad, grad) < 1e-5


@pytest.mark.parametrize(
    "logits, targets, error, match",
    [
        (torch.ones(3, 5), torch.zeros(2, dtype=torch.long), ValueError, r"\(3, 5\) and \(2,\)"),
        (torch.ones(3, 5), torch.zeros(3, dtype=torch.int32), TypeError, "int64"),
        (torch.ones(3, 5, dtype=torch.float64), torch.zeros(3, dtype=torch.long), TypeError, "float64"),
        (torch.ones(5, 3).t(), torch.zeros(3, dtype=torch.long), ValueError, "contiguous"),
        (torch.ones(3, 5, requires_grad=True), torch.zeros(3, dtype=torch.long), ValueError, "in place"),
    ],
)
def test_rejects_bad_arguments(logits, targets, error, match):
    with pytest.raises(error, match=match):
        cross_entropy_chunk(logits, targets, 1.0)
