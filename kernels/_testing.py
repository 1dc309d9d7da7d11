"""Helpers shared by the kernel tests and benchmarks: the error metric, NaN poisoning, unit inputs."""

from __future__ import annotations

import contextlib
from unittest import mock

import torch


def rel_rms(ref: torch.Tensor, out: torch.Tensor) -> float:
    """RMS(ref - out) / RMS(ref), in float64: the one error metric every kernel is judged by.

    A relative RMS does not hide errors in small entries behind large ones the way a max-abs
    tolerance tuned to the largest entry does, and unlike elementwise relative error it is stable
    where the reference crosses zero. NaN anywhere in `out` makes the result NaN (fails every bound).
    """
    if ref.shape != out.shape:
        raise ValueError(f"shape mismatch: reference {tuple(ref.shape)} vs output {tuple(out.shape)}")
    ref64, out64 = ref.detach().double(), out.detach().double()
    denom = ref64.pow(2).mean().sqrt()
    if denom == 0:
        raise ValueError("reference is all zeros: a relative error is undefined (use non-zero inputs)")
    return ((ref64 - out64).pow(2).mean().sqrt() / denom).item()


def poison_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with NaN in place, so an element a kernel forgets to write fails the comparison."""
    return tensor.fill_(float("nan"))


def unit_randn(*shape: int, dtype=torch.float32, device="cpu", seed: int = 0) -> torch.Tensor:
    """Standard-normal values: unit scale, so small-value (0.02-init) inputs cannot hide errors."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


@contextlib.contextmanager
def poisoned_allocations():
    """Within the block, torch.empty/empty_like return NaN-filled floating tensors.

    The kernels allocate their outputs with these; poisoning them makes any element a kernel fails
    to write show up as NaN in the comparison, also on the custom-op and autograd paths where the
    test cannot hand in an output buffer itself.
    """
    empty, empty_like = torch.empty, torch.empty_like

    def fill(t: torch.Tensor) -> torch.Tensor:
        return t.fill_(float("nan")) if t.is_floating_point() else t

    with (
        mock.patch.object(torch, "empty", lambda *a, **k: fill(empty(*a, **k))),
        mock.patch.object(torch, "empty_like", lambda *a, **k: fill(empty_like(*a, **k))),
    ):
        yield
