"""The GPU selection of token rounding (a radix select per expert) against the stable-sort definition."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels.moe.rounding_select import take_largest
from redpajama.kernels.moe.routing import take_largest_by_sort


@pytest.mark.parametrize(
    "t, e, kind",
    [
        (1, 1, "random"),
        (17, 3, "random"),
        (1500, 5, "random"),  # a column over two steps of the kernel's loop, the last one ragged
        (700, 4, "ties"),  # keys in steps of 0.5: long runs of equal keys, ties to the lower token
        (300, 3, "signed zeros"),  # -0.0 and 0.0 are one key
        (400, 6, "routing"),  # chosen weights in (0, 1], the others' probabilities - 1 in [-1, 0)
    ],
)
def test_take_largest_equals_the_stable_sort(t, e, kind, device):
    gen = torch.Generator().manual_seed(t * 10 + e)
    key = torch.randn(t, e, generator=gen)
    if kind == "ties":
        key = torch.round(key * 2) / 2
    elif kind == "signed zeros":
        key = torch.tensor([0.0, -0.0, 1.0, -1.0])[torch.randint(0, 4, (t, e), generator=gen)]
    elif kind == "routing":
        probs = torch.softmax(key, dim=-1)
        top = probs.topk(2, dim=-1)
        key = (probs - 1).scatter_(1, top.indices, top.values / top.values.sum(-1, keepdim=True))
    counts = torch.randint(0, t + 1, (e,), generator=gen)
    counts[0] = 0
    counts[-1] = t if e > 1 else counts[-1]
    got = take_largest(key.to(device), counts.to(device)).cpu()
    assert got.dtype == torch.bool
    assert torch.equal(got.sum(1), counts)
    assert torch.equal(got, take_largest_by_sort(key, counts))
