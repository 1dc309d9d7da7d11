"""MoE routing: top-K against the naive routing, token rounding against a per-expert loop reference.

The loop reference below re-derives SonicMoE's token-rounding rule from its description, one expert
at a time with Python sorting, so the vectorised scatter/argsort implementation is checked against
an independent formulation (selection, order, scores and gradients w.r.t. the router logits).
"""

from __future__ import annotations

import math

import pytest
import torch

from redpajama.kernels._testing import rel_rms, unit_randn
from redpajama.kernels.moe import naive
from redpajama.kernels.moe.routing import Routing, rounded_counts, route_token_rounding, route_topk


def _pairs(routing: Routing) -> list[tuple[int, int]]:
    return list(zip(routing.token_indices.tolist(), routing.expert_indices.tolist(), strict=True))


def _score_map(routing: Routing) -> dict[tuple[int, int], float]:
    return dict(zip(_pairs(routing), routing.scores.tolist(), strict=True))


def _round(f: int, tile: int, mode: str, t: int) -> int:
    # Python's round() is half-to-even, like torch.round in the implementation.
    rounded = {"up": math.ceil(f / tile), "down": f // tile, "nearest": round(f / tile)}[mode] * tile
    return min(rounded, t)


def reference_rounding(logits: torch.Tensor, k: int, tile: int, mode: str):
    """Token rounding, expert by expert: returns [(token, expert, score tensor)] expert-major."""
    t, e = logits.shape
    probs = torch.softmax(logits.float(), dim=-1)
    rows = probs.tolist()
    chosen = [sorted(range(e), key=lambda j, r=row: (-r[j], j))[:k] for row in rows]
    weights = {}
    for i, experts in enumerate(chosen):
        total = probs[i, experts].sum()
        for j in experts:
            weights[i, j] = probs[i, j] / total
    frequency = [sum(j in experts for experts in chosen) for j in range(e)]
    out = []
    for j in range(e):
        # Chosen pairs first (by renormalised weight), then unchosen (by probability); ties by token.
        # Exact probabilities order the unchosen here; the implementation's float32 key p - 1 (the
        # reference's) merges probabilities closer than ~6e-8, which these seeds never produce.
        ranked = sorted(
            range(t),
            key=lambda i, j=j: (0, -weights[i, j].item(), i) if (i, j) in weights else (1, -rows[i][j], i),
        )
        taken = sorted(ranked[: _round(frequency[j], tile, mode, t)])
        out += [(i, j, weights[i, j] if (i, j) in weights else probs[i, j]) for i in taken]
    return out


def _check_layout(routing: Routing, t: int, e: int) -> None:
    tokens, experts = routing.token_indices, routing.expert_indices
    m = tokens.shape[0]
    assert tokens.dtype == experts.dtype == torch.int64 and routing.scores.dtype == torch.float32
    assert routing.expert_counts.dtype == routing.expert_offsets.dtype == torch.int64
    assert experts.shape == routing.scores.shape == (m,)
    assert routing.expert_counts.shape == (e,) and routing.expert_offsets.shape == (e + 1,)
    assert torch.equal(routing.expert_counts, torch.bincount(experts, minlength=e))
    assert routing.expert_offsets[0] == 0 and routing.expert_offsets[-1] == m
    assert torch.equal(routing.expert_offsets.diff(), routing.expert_counts)
    for j in range(e):
        lo, hi = routing.expert_offsets[j].item(), routing.expert_offsets[j + 1].item()
        assert (experts[lo:hi] == j).all()
        block = tokens[lo:hi]
        assert (block.diff() > 0).all(), "tokens strictly ascending within an expert"
        assert block.numel() == 0 or (block.min() >= 0 and block.max() < t)


@pytest.mark.parametrize("t, e, k", [(63, 7, 3), (500, 64, 8), (5, 4, 4), (1, 3, 1)])
def test_topk_equals_naive_as_triples(t, e, k, device):
    logits = unit_randn(t, e, seed=t + e, device=device)
    tokens, experts, scores = naive.topk_routing(logits, k)
    routing = route_topk(logits, k)
    _check_layout(routing, t, e)
    assert routing.num_assignments == t * k and routing.num_experts == e
    ref = dict(zip(zip(tokens.tolist(), experts.tolist(), strict=True), scores.tolist(), strict=True))
    assert _score_map(routing) == ref


@pytest.mark.parametrize("mode", [None, "topk"])
def test_no_rounding_is_topk(mode):
    logits = unit_randn(63, 7, seed=1)
    plain, same = route_topk(logits, 3), route_token_rounding(logits, 3, tile=8, mode=mode)
    for field in ("token_indices", "expert_indices", "scores", "expert_counts", "expert_offsets"):
        assert torch.equal(getattr(plain, field), getattr(same, field))


@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("t, e, k, tile", [(63, 7, 3, 8), (500, 64, 8, 16), (257, 12, 2, 32)])
def test_counts_are_the_rounded_frequencies(mode, t, e, k, tile, device):
    logits = unit_randn(t, e, seed=7, device=device)
    frequency = torch.bincount(route_topk(logits, k).expert_indices, minlength=e).tolist()
    routing = route_token_rounding(logits, k, tile=tile, mode=mode)
    _check_layout(routing, t, e)
    expected = [_round(f, tile, mode, t) for f in frequency]
    assert routing.expert_counts.tolist() == expected
    assert all(c % tile == 0 for c in expected), "no expert here reaches T, so all are tile multiples"


def test_rounded_counts_half_to_even_and_cap():
    f = torch.tensor([0, 3, 4, 5, 12, 20, 8, 100])
    assert rounded_counts(f, 8, "nearest", 1000).tolist() == [0, 0, 0, 8, 16, 16, 8, 96]
    assert rounded_counts(f, 8, "up", 1000).tolist() == [0, 8, 8, 8, 16, 24, 8, 104]
    assert rounded_counts(f, 8, "down", 1000).tolist() == [0, 0, 0, 0, 8, 16, 8, 96]
    assert rounded_counts(f, 8, "up", 10).tolist() == [0, 8, 8, 8, 10, 10, 8, 10]


def test_round_down_drops_each_experts_lowest_scored_chosen_tokens():
    t, e, k, tile = 200, 16, 4, 16
    logits = unit_randn(t, e, seed=3)
    top, down = _score_map(route_topk(logits, k)), _score_map(route_token_rounding(logits, k, tile, "down"))
    assert set(down) <= set(top)
    dropped_any = False
    for j in range(e):
        kept = [s for (i, x), s in down.items() if x == j]
        dropped = [s for (i, x), s in top.items() if x == j and (i, x) not in down]
        dropped_any |= bool(dropped)
        if kept and dropped:
            assert min(kept) >= max(dropped), j
    assert dropped_any
    for pair, s in down.items():
        assert s == pytest.approx(top[pair], rel=1e-6), "kept pairs keep their top-K weight"


def test_round_up_adds_each_experts_most_probable_unchosen_tokens():
    t, e, k, tile = 200, 16, 4, 16
    logits = unit_randn(t, e, seed=4)
    probs = torch.softmax(logits, dim=-1)
    top, up = _score_map(route_topk(logits, k)), _score_map(route_token_rounding(logits, k, tile, "up"))
    assert set(up) >= set(top)
    assert len(up) > len(top)
    for j in range(e):
        added = [i for (i, x) in up if x == j and (i, x) not in top]
        left = [i for i in range(t) if (i, j) not in up]
        if added and left:
            assert probs[added, j].min() >= probs[left, j].max(), j
        for i in added:
            assert up[i, j] == probs[i, j].item(), "an added pair's score is its full-softmax probability"
    for pair, s in top.items():
        assert up[pair] == pytest.approx(s, rel=1e-6)


@pytest.mark.parametrize(
    "t, e, k, tile, mode",
    [
        (63, 7, 3, 8, "up"),
        (63, 7, 3, 8, "down"),
        (63, 7, 3, 8, "nearest"),
        (200, 16, 4, 16, "nearest"),
        (33, 5, 1, 4, "up"),
        (10, 4, 2, 8, "up"),  # rounding up past T: capped
    ],
)
def test_matches_loop_reference_selection_scores_and_gradient(t, e, k, tile, mode, device):
    base = unit_randn(t, e, seed=11, device=device)
    weight = unit_randn(t, e, seed=12, device=device)  # a different weight per (token, expert) in the loss
    logits = base.clone().requires_grad_()
    routing = route_token_rounding(logits, k, tile, mode)
    _check_layout(routing, t, e)
    (routing.scores * weight[routing.token_indices, routing.expert_indices]).sum().backward()

    ref_logits = base.clone().requires_grad_()
    ref = reference_rounding(ref_logits, k, tile, mode)
    assert _pairs(routing) == [(i, j) for i, j, _ in ref], "same selection, same expert-major order"
    ref_scores = torch.stack([s for _, _, s in ref])
    assert rel_rms(ref_scores, routing.scores) < 1e-6
    torch.stack([s * weight[i, j] for i, j, s in ref]).sum().backward()
    assert rel_rms(ref_logits.grad, logits.grad) < 1e-5


def test_ties_go_to_the_lower_token():
    # Token 0 alone picks expert 0; tokens 1..5 are identical, so their unchosen expert-0
    # probabilities tie. Rounding expert 0 up from 1 to 4 must add tokens 1, 2, 3.
    logits = torch.tensor([[1.0, 0.0]] + [[0.0, 1.0]] * 5)
    routing = route_token_rounding(logits, 1, tile=4, mode="up")
    assert routing.expert_counts.tolist() == [4, 6]  # expert 1: 5 rounds up to 8, capped at T = 6
    assert _pairs(routing)[:4] == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_rounding_down_below_one_tile_routes_nothing():
    logits = unit_randn(6, 4, seed=5)
    routing = route_token_rounding(logits, 2, tile=8, mode="down")
    _check_layout(routing, 6, 4)
    assert routing.num_assignments == 0 and routing.expert_counts.tolist() == [0, 0, 0, 0]


def test_expert_outputs_over_a_rounded_routing():
    t, d, n, e, k = 63, 16, 8, 7, 3
    x = unit_randn(t, d, seed=20).requires_grad_()
    router_w = unit_randn(e, d, seed=21).requires_grad_()
    w1, w2 = unit_randn(e, d, 2 * n, seed=22), unit_randn(e, n, d, seed=23)
    routing = route_token_rounding(x @ router_w.t(), k, tile=8, mode="up")
    out = naive.expert_outputs(x, w1, w2, routing.token_indices, routing.expert_indices, routing.scores)
    assert out.shape == (t, d) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert torch.isfinite(router_w.grad).all() and router_w.grad.abs().sum() > 0


def test_half_precision_logits_route_in_float32():
    logits = unit_randn(63, 7, seed=30)
    ref = route_token_rounding(logits.bfloat16().float(), 3, 8, "nearest")
    out = route_token_rounding(logits.bfloat16(), 3, 8, "nearest")
    assert out.scores.dtype == torch.float32
    assert torch.equal(out.token_indices, ref.token_indices) and torch.equal(out.scores, ref.scores)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=8), "k must be in 1..7"),
        (dict(k=0), "k must be in 1..7"),
        (dict(k=2, mode="sideways"), "sideways"),
        (dict(k=2, mode="up", tile=0), "tile must be a positive"),
    ],
)
def test_bad_arguments_name_the_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        route_token_rounding(unit_randn(4, 7), **kwargs)
