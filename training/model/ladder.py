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
module i+1 has been computed, just before y_i is added to the stream (`residual.ladder_residual`). The
standard loop must wait at once: module i+1 reads y_i.

`LadderTransformer` has exactly `Transformer`'s parameters (same names, same init, interchangeable
state dicts) and only changes the data flow; it is a different architecture, not a reordering of
the same math, so a checkpoint of one is not a trained model of the other.
"""

from __future__ import annotations

import torch

from redpajama.training.model.residual import block_modules, embed_tokens, ladder_residual
from redpajama.training.model.transformer import Transformer


class LadderTransformer(Transformer):
    """`Transformer`'s parameters with the ladder data flow (module docstring); same call signature."""

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x, cos, sin = embed_tokens(self, input_ids)
        return ladder_residual(x, block_modules(self.blocks, cos, sin), self.norm)
