from __future__ import annotations

import pytest
import torch

from redpajama.kernels.moe.small_int_sort import key_dtype, stable_sort_ids


@pytest.mark.parametrize(
    "bound, dtype",
    [
        (0, torch.int16),
        (32766, torch.int16),
        (32767, torch.int32),
        (2**31 - 2, torch.int32),
        (2**31 - 1, torch.int64),
    ],
)
def test_key_dtype_holds_the_bound(bound, dtype):
    assert key_dtype(bound) == dtype
    assert torch.iinfo(dtype).max > bound


@pytest.mark.parametrize("bound", [7, 32766, 40000])
def test_stable_sort_ids_matches_int64_sort(device, bound):
    gen = torch.Generator().manual_seed(bound)
    ids = torch.randint(0, bound, (3000,), generator=gen)
    ids[::5] = bound - 1  # many ties, and the largest id
    values, order = stable_sort_ids(ids.to(device), bound)
    expected = torch.sort(ids, stable=True)
    assert order.dtype == torch.int64
    assert torch.equal(order.cpu(), expected.indices)
    assert torch.equal(values.cpu().long(), expected.values)
