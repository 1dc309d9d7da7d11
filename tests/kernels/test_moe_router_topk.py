"""The GPU top-K of the router (K passes of a row maximum) against a stable descending sort."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels.moe.router_topk import topk_experts_gpu


@pytest.mark.parametrize(
    "t, e, k, kind",
    [
        (1, 1, 1, "random"),
        (37, 5, 2, "random"),  # E not a power of 2: padding columns never win
        (300, 64, 8, "random"),
        (200, 7, 7, "random"),  # k = E: a full descending order
        (150, 12, 4, "ties"),  # values in steps of 0.5: ties go to the lower expert
        (90, 6, 3, "infinities and NaN"),  # -inf rows, +inf and NaN (ranked above everything)
        (120, 40, 8, "bfloat16"),  # 16-bit scores: many ties, compared as read
    ],
)
def test_topk_experts_equals_a_stable_sort(t, e, k, kind, device):
    gen = torch.Generator().manual_seed(t + e + k)
    scores = torch.randn(t, e, generator=gen)
    if kind == "ties":
        scores = torch.round(scores * 2) / 2
    elif kind == "infinities and NaN":
        scores[::3] = float("-inf")
        scores[1::5, 0] = float("inf")
        scores[2::7, 1] = float("nan")
    elif kind == "bfloat16":
        scores = scores.bfloat16()
    expected = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :k]
    got = topk_experts_gpu(scores.to(device), k).cpu()
    assert got.dtype == torch.int64
    assert torch.equal(got, expected)
