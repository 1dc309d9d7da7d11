"""Router decisions as an expert-major assignment list: plain top-K and SonicMoE's token rounding.

A `Routing` lists M (token, expert, score) assignments sorted by expert, then by token: expert e's
assignments are rows expert_offsets[e] .. expert_offsets[e+1]-1, which is the layout a grouped GEMM
reads (one contiguous row block per expert). The same lists feed `naive.expert_outputs`.

Token rounding (SonicMoE, "token-choice rounding"): route top-K first, then move every expert's load
to a multiple of the GEMM tile by dropping its lowest-scored chosen tokens (round down) or adding
its highest-probability unchosen tokens (round up), so no tile is partly padding. The selection
follows the reference `forward_token_choice_rounding` of SonicMoE's benchmark step by step; the
scores of chosen pairs are the renormalised top-K weights (as in plain top-K routing; the reference
returns the unnormalised softmax there), those of added pairs the token's full-softmax probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from redpajama.kernels.moe.small_int_sort import group_ids

RoundingMode = Literal["topk", "up", "down", "nearest"]
ROUNDING_MODES = ("topk", "up", "down", "nearest")


@dataclass(frozen=True)
class Routing:
    """M assignments, expert-major (sorted by expert, then token); E experts.

    token_indices  int64 (M,)    the token of each assignment
    expert_indices int64 (M,)    its expert, non-decreasing
    scores         float32 (M,)  its gate weight, differentiable w.r.t. the router logits
    expert_counts  int64 (E,)    assignments per expert
    expert_offsets int64 (E+1,)  exclusive prefix sum of expert_counts (offsets[E] == M)
    """

    token_indices: torch.Tensor
    expert_indices: torch.Tensor
    scores: torch.Tensor
    expert_counts: torch.Tensor
    expert_offsets: torch.Tensor

    @property
    def num_experts(self) -> int:
        return self.expert_counts.shape[0]

    @property
    def num_assignments(self) -> int:
        return self.token_indices.shape[0]


def _check(logits: torch.Tensor, k: int) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be (tokens, experts), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"k must be in 1..{logits.shape[1]} (the number of experts), got {k}")


def _expert_major(tokens: torch.Tensor, experts: torch.Tensor, scores: torch.Tensor, e: int) -> Routing:
    """Sort token-major assignments expert-major. A stable sort by expert keeps tokens ascending
    within each expert because the input is ordered by token (`small_int_sort.group_ids`: 16-bit
    keys, and offsets without bincount's host sync, so top-K routing can be captured in a CUDA
    graph)."""
    sorted_experts, order, offsets = group_ids(experts, e)
    return Routing(tokens[order], sorted_experts.long(), scores[order], offsets.diff(), offsets)


def _choices_per_expert(top_experts: torch.Tensor, e: int) -> torch.Tensor:
    """(E,) int64: how many of the (T, K) choices name each expert; bincount without its host sync."""
    flat = top_experts.reshape(-1)
    return torch.zeros(e, dtype=torch.int64, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat))


def topk_experts(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(T, K) int64: each token's k experts of largest score (T, E), largest first, ties to the
    lower expert (a stable descending sort; torch.topk leaves ties unordered). On a GPU one Triton
    pass (`router_topk.py`) instead of torch.topk's radix select per row."""
    if scores.is_cuda:
        # Imported here: CPU runs never need Triton.
        from redpajama.kernels.moe.router_topk import topk_experts_gpu

        return topk_experts_gpu(scores, k)
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :k]


def route_topk(logits: torch.Tensor, k: int) -> Routing:
    """Top-K experts per token by logit; scores = softmax over the K chosen logits (float32).

    logits (T, E) -> Routing with M = T*K. Same assignments as `naive.topk_routing`, re-ordered
    (where logits tie at the K-th place, `topk_experts` takes the lower expert; torch.topk, which
    the naive routing uses, may take either). No host sync.
    """
    _check(logits, k)
    t, e = logits.shape
    top_experts = topk_experts(logits, k)
    top_logits = logits.gather(1, top_experts)
    scores = torch.softmax(top_logits.float(), dim=-1)
    tokens = torch.arange(t, device=logits.device).repeat_interleave(k)
    return _expert_major(tokens, top_experts.reshape(-1), scores.reshape(-1), e)


def rounded_counts(frequency: torch.Tensor, tile: int, mode: RoundingMode, num_tokens: int) -> torch.Tensor:
    """Each expert's top-K frequency moved to a multiple of `tile` (capped at `num_tokens`).

    up: ceil, down: floor, nearest: torch.round (half to even, as the reference). The cap only
    binds when rounding up past T; such an expert takes every token and is not a tile multiple.
    """
    if mode == "up":
        rounded = -(-frequency // tile) * tile
    elif mode == "down":
        rounded = frequency // tile * tile
    elif mode == "nearest":
        # float32 division, as the reference computes it.
        rounded = torch.round(frequency.float() / tile).long() * tile
    else:
        raise ValueError(f"rounding mode must be one of up, down, nearest; got {mode!r}")
    return rounded.clamp(max=num_tokens)


def route_token_rounding(
    logits: torch.Tensor, k: int, tile: int = 128, mode: RoundingMode | None = None
) -> Routing:
    """SonicMoE token rounding: top-K routing with every expert's load rounded to a `tile` multiple.

    logits (T, E), any float dtype (the math is float32) -> Routing with M = sum of rounded counts.
    1. probs = softmax(logits) over E; the top-K probs per token are its choices, renormalised to
       sum 1 (these weights equal top-K routing's softmax over the K logits).
    2. f_e = number of choices of expert e; f'_e = `rounded_counts(f, tile, mode, T)`.
    3. S = probs with the chosen entries replaced by their renormalised weights. Sort key
       C = S - 1 with chosen entries set back to their weights: chosen pairs (key in (0, 1]) outrank
       unchosen ones (key in [-1, 0)), each class ordered by its score.
    4. Expert e takes the f'_e tokens of largest key in its column. Ties go to the lower token index
       (a stable descending argsort on the CPU, a radix select per expert on a GPU:
       `rounding_select.py`; the reference's sort is unstable, so exact ties may differ).
    Scores are S[token, expert], differentiable w.r.t. logits through the softmax; the selection is
    discrete. mode None or "topk" (the default, as in the model config) returns `route_topk`.
    """
    if mode is None or mode == "topk":
        return route_topk(logits, k)
    _check(logits, k)
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {', '.join(ROUNDING_MODES)} or None; got {mode!r}")
    if tile < 1:
        raise ValueError(f"tile must be a positive number of tokens, got {tile}")
    t, e = logits.shape
    probs = torch.softmax(logits.float(), dim=-1)
    top_experts = topk_experts(probs, k)
    top_values = probs.gather(1, top_experts)
    weights = top_values / top_values.sum(dim=-1, keepdim=True)
    counts = rounded_counts(_choices_per_expert(top_experts, e), tile, mode, t)

    scores = probs.scatter(1, top_experts, weights)  # S: autograd flows through both sources
    # The sort key is discrete bookkeeping: no gradient, and the float32 subtraction is the
    # reference's (unchosen probs closer than ~6e-8 tie, then the lower token wins).
    key = (scores.detach() - 1).scatter_(1, top_experts, weights.detach())
    if key.is_cuda:
        # Imported here: CPU runs never need Triton.
        from redpajama.kernels.moe.rounding_select import take_largest

        selected = take_largest(key, counts)
    else:
        selected = take_largest_by_sort(key, counts)
    experts, tokens = selected.nonzero(as_tuple=True)  # expert-major, tokens ascending
    offsets = torch.zeros(e + 1, dtype=torch.int64, device=logits.device)
    offsets[1:] = torch.cumsum(counts, 0)
    return Routing(tokens, experts, scores[tokens, experts], counts, offsets)


def take_largest_by_sort(key: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(E, T) bool: row e marks the counts[e] tokens of largest key in column e of key (T, E), ties
    to the lower token. A stable argsort of every column: the CPU path, and the definition that
    `rounding_select.take_largest` (the GPU path, a radix select) is tested against."""
    t = key.shape[0]
    ranked = torch.argsort(key.t(), dim=1, descending=True, stable=True)  # (E, T) token ids by rank
    taken = torch.arange(t, device=key.device)[None, :] < counts[:, None]  # (E, T) by rank
    return torch.zeros_like(taken).scatter_(1, ranked, taken)  # back from rank order to token order
