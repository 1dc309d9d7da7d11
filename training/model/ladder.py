"""Ladder Residual (Zhang, Mishra, ..., Dao 2025, arXiv 2501.06589): each module reads the residual
stream without the previous module's output, so that output's tensor-parallel all-reduce runs while
the next module computes.

Number the 2L modules of an L-block decoder in order, attention then MLP per block:
m_1 = attn_1, m_2 = mlp_1, m_3 = attn_2, ..., m_2L = mlp_L, each with its own pre-norm N_i. With
x_0 the token embedding and y_i module i's output:

    standard (pre-norm):  h_i = x_0 + sum_{j <= i-1} y_j      y_i = m_i(N_i(h_i))
    ladder:               h_i = x_0 + sum_{j <= i-2} y_j      y_i = m_i(N_i(h_i))
    both:                 output = N_final(x_0 + sum_{j <= 2L} y_j)

that is h_i = h_{i-1} + y_{i-2}, with y_{-1} = y_0 = 0. The first two modules (attn_1 and mlp_1) both
read the embedding x_0; the last module's output y_2L and the one before it, y_{2L-1}, are both
added after the loop, before the final norm, so every module's output reaches the head exactly once.
This is the published implementation's data flow (dolomite-engine `LadderResidualBlock` and the
gpt-fast based `GPTLadder` of the paper's inference repo): a block adds the previous block's
attention output before its attention and the previous block's MLP output before its MLP, and the
model adds the last block's two outputs at the end.

Under tensor parallelism y_i is a partial sum on every rank until it is all-reduced. The ladder loop
launches that all-reduce as soon as module i has produced its partial sum and waits on it only after
module i+1 has been computed, just before y_i is added to the stream (`ladder_residual` below). The
standard loop must wait at once: module i+1 reads y_i.

`LadderTransformer` has exactly `Transformer`'s parameters (same names, same init, interchangeable
state dicts) and only changes the data flow; it is a different architecture, not a reordering of
the same math, so a checkpoint of one is not a trained model of the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

from redpajama.training.model.transformer import Transformer

# A residual module as the stream loops see it: pre-norm and the module proper (attention or MLP).
# Under tensor parallelism the module returns this rank's partial sum of its output.
ResidualModule = tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]


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
    x: torch.Tensor, modules: Sequence[ResidualModule], comm: Comm = LOCAL
) -> torch.Tensor:
    """Standard pre-norm: h_i = h_{i-1} + y_{i-1}; returns x_0 + sum of all y (before the final norm)."""
    for norm, module in modules:
        x = x + comm.start(module(comm.enter(norm(x)))).wait()
    return x


def ladder_residual(x: torch.Tensor, modules: Sequence[ResidualModule], comm: Comm = LOCAL) -> torch.Tensor:
    """Ladder: h_i = h_{i-1} + y_{i-2}; returns x_0 + sum of all y (before the final norm).

    y_{i-1}'s all-reduce is in flight while module i computes; it is waited on right after module
    i's own all-reduce has been launched, and then added.
    """
    previous: Pending | None = None
    for norm, module in modules:
        current = comm.start(module(comm.enter(norm(x))))
        if previous is not None:
            x = x + previous.wait()
        previous = current
    if previous is not None:
        x = x + previous.wait()
    return x


def embed_tokens(model: Transformer, input_ids: torch.Tensor):
    """The residual stream's start x_0 and the RoPE rows for `input_ids`, as Transformer builds them."""
    t = input_ids.shape[1]
    if t > model.config.max_seq_len:
        raise ValueError(f"sequence length {t} exceeds max_seq_len {model.config.max_seq_len}")
    x = model.embed(input_ids)
    if torch.is_autocast_enabled(x.device.type):
        # The stream in the compute dtype, as Transformer.hidden_states keeps it.
        x = x.to(torch.get_autocast_dtype(x.device.type))
    return x, model.rope_cos[:t], model.rope_sin[:t]


class LadderTransformer(Transformer):
    """`Transformer`'s parameters with the ladder data flow (module docstring); same call signature."""

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x, cos, sin = embed_tokens(self, input_ids)
        return self.norm(ladder_residual(x, block_modules(self.blocks, cos, sin)))
