from __future__ import annotations

import pytest
import torch

from redpajama.kernels.moe.small_int_sort import group_ids, key_dtype


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
def test_group_ids_matches_an_int64_sort(device, bound):
    gen = torch.Generator().manual_seed(bound)
    ids = torch.randint(0, bound, (3000,), generator=gen)
    ids[::5] = bound - 1  # many ties, and the largest id
    ids[ids == 1] = 2  # an id with no positions: an empty group
    values, order, starts = (v.cpu() for v in group_ids(ids.to(device), bound))
    expected = torch.sort(ids, stable=True)
    assert order.dtype == starts.dtype == torch.int64
    assert torch.equal(order, expected.indices)
    assert torch.equal(values.long(), expected.values)
    assert torch.equal(starts, torch.searchsorted(expected.values, torch.arange(bound + 1)))
    assert starts[1] == starts[2]
