"""The residual stream as a loop over modules: the standard pre-norm flow and the Ladder flow
(ladder.py's module doc has the math), shared by the one-process models, the tensor-parallel model and
the decode benchmark.

Each step adds the pending module output to the stream and normalizes the sum for the next module in
one call (`RMSNorm.add_and_norm`; one Triton op on CUDA with the model's `fused_norms`). The add and
the norm that follows it belong to different blocks, so the loops run over modules, not blocks:
Inductor, left to fuse them itself, pairs the Ladder's norm backwards differently from the standard
model's (docs/benchmarks.md, Ladder residual), and the fused op gives both flows the same kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from redpajama.training.model.layers import RMSNorm

# A residual module as the stream loops see it: pre-norm and the module proper (attention or MLP).
# Under tensor parallelism the module returns this rank's partial sum of its output.
ResidualModule = tuple["RMSNorm", Callable[[torch.Tensor], torch.Tensor]]


class Pending(Protocol):
    def wait(self) -> torch.Tensor: ...


class Comm(Protocol):
    """What the stream loops need from a tensor-parallel group (tensor_parallel.TensorParallelComm)."""

    def enter(self, x: torch.Tensor) -> torch.Tensor:
        """A replicated activation entering column-parallel weights (identity forward)."""
        ...

    def start(self, y: torch.Tensor) -> Pending:
        """Launch the sum of a row-parallel output's partial sums over the group."""
        ...


class _Ready:
    def __init__(self, y: torch.Tensor) -> None:
        self.y = y

    def wait(self) -> torch.Tensor:
        return self.y


class LocalComm:
    """One rank: module outputs are already whole."""

    def enter(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def start(self, y: torch.Tensor) -> Pending:
        return _Ready(y)


LOCAL = LocalComm()


def block_modules(blocks: Sequence[nn.Module], cos: torch.Tensor, sin: torch.Tensor) -> list[ResidualModule]:
    """The 2L modules of `blocks` in stream order: (attn_norm, attn), (mlp_norm, mlp) per block."""
    modules: list[ResidualModule] = []
    for block in blocks:
        attn = block.attn
        modules.append((block.attn_norm, lambda h, attn=attn: attn(h, cos, sin)))
        modules.append((block.mlp_norm, block.mlp))
    return modules


def sequential_residual(
    x: torch.Tensor, modules: Sequence[ResidualModule], final_norm: RMSNorm, comm: Comm = LOCAL
) -> torch.Tensor:
    """Standard pre-norm, h_i = h_{i-1} + y_{i-1}; returns final_norm(x_0 + sum of all y)."""
    y = None
    for norm, module in modules:
        x, normed = norm.add_and_norm(x, y)
        y = comm.start(module(comm.enter(normed))).wait()
    return final_norm.add_and_norm(x, y)[1]


def ladder_residual(
    x: torch.Tensor, modules: Sequence[ResidualModule], final_norm: RMSNorm, comm: Comm = LOCAL
) -> torch.Tensor:
    """Ladder, h_i = h_{i-1} + y_{i-2}; returns final_norm(x_0 + sum of all y).

    y_{i-1}'s all-reduce is in flight while module i computes; it is waited on right after module
    i's own all-reduce has been launched, and joins the stream in module i+1's add-and-norm.
    """
    ready = None  # y_{i-2} at module i: waited on, not yet added
    previous: Pending | None = None  # y_{i-1}, in flight
    for norm, module in modules:
        x, normed = norm.add_and_norm(x, ready)
        current = comm.start(module(comm.enter(normed)))
        ready = previous.wait() if previous is not None else None
        previous = current
    if previous is None:
        return final_norm(x)
    if ready is not None:
        x = x + ready
    return final_norm.add_and_norm(x, previous.wait())[1]


def embed_tokens(model: nn.Module, input_ids: torch.Tensor):
    """The residual stream's start x_0 and the RoPE rows for `input_ids` (a `Transformer`)."""
    t = input_ids.shape[1]
    if t > model.config.max_seq_len:
        raise ValueError(f"sequence length {t} exceeds max_seq_len {model.config.max_seq_len}")
    x = model.embed(input_ids)
    if torch.is_autocast_enabled(x.device.type):
        # A residual stream in the compute dtype, as Megatron keeps it: half the bytes of every
        # add and norm. Norm statistics are still taken in float32 (RMSNorm upcasts).
        x = x.to(torch.get_autocast_dtype(x.device.type))
    return x, model.rope_cos[:t], model.rope_sin[:t]
