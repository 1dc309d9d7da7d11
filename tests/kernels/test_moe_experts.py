"""MoE expert kernels (gathered grouped GEMMs) against naive.expert_outputs: forward, the gradients of
x, w1, w2 and scores, awkward routings, the saved-for-backward state, custom ops, torch.compile."""

from __future__ import annotations

import pytest
import torch

from redpajama.kernels._testing import poisoned_allocations, rel_rms, unit_randn
from redpajama.kernels.moe import naive
from redpajama.kernels.moe.experts import INTERPRETER_CONFIG, moe_experts, tile_map, token_order


def routing(t: int, e: int, k: int, seed: int, bias: dict[int, float] | None = None, drop: float = 0.0):
    """Top-K routing of random logits, sorted expert-major (token order within an expert shuffled).

    bias adds to the logits of the given experts (-1e9: an expert nobody picks; +1e9: everybody's);
    drop removes that fraction of the assignments (tokens may end up with fewer than K, or none).
    Returns (token_indices, expert_indices, expert_offsets, scores).
    """
    logits = unit_randn(t, e, seed=seed)
    for expert, value in (bias or {}).items():
        logits[:, expert] += value
    tokens, experts, scores = naive.topk_routing(logits, k)
    gen = torch.Generator().manual_seed(seed + 1)
    if drop:
        keep = torch.rand(tokens.shape[0], generator=gen) >= drop
        tokens, experts, scores = tokens[keep], experts[keep], scores[keep]
    shuffle = torch.randperm(tokens.shape[0], generator=gen)
    tokens, experts, scores = tokens[shuffle], experts[shuffle], scores[shuffle]
    order = torch.sort(experts, stable=True).indices
    tokens, experts, scores = tokens[order], experts[order], scores[order].contiguous()
    offsets = torch.zeros(e + 1, dtype=torch.int64)
    offsets[1:] = torch.bincount(experts, minlength=e).cumsum(0)
    return tokens, experts, offsets, scores


def weights(t, d, n, e, seed, device):
    x = unit_randn(t, d, seed=seed, device=device)
    w1 = unit_randn(e, d, 2 * n, seed=seed + 1, device=device)
    w2 = unit_randn(e, n, d, seed=seed + 2, device=device)
    d_out = unit_randn(t, d, seed=seed + 3, device=device)
    return x, w1, w2, d_out


def fwd_bwd(fn, x, w1, w2, scores, d_out, *route):
    leaves = [v.detach().clone().requires_grad_() for v in (x, w1, w2, scores)]
    out = fn(leaves[0], leaves[1], leaves[2], *route, leaves[3])
    out.backward(d_out)
    return out.detach(), [v.grad for v in leaves]


def ours(x, w1, w2, tokens, offsets, scores):
    return moe_experts(x, w1, w2, tokens, offsets, scores, validate=True)


# (T, d, n, E, K, routing options): block 16 in the interpreter, so d and n of 20-40 leave partial
# column blocks and M = T*K is no multiple of 16.
CASES = {
    "topk": (37, 24, 20, 5, 2, {}),
    "topk_k3_wide": (45, 40, 24, 6, 3, {}),
    "k1_block_multiples": (32, 16, 16, 4, 1, {}),
    "empty_experts": (29, 16, 36, 6, 2, dict(bias={0: -1e9, 3: -1e9, 5: -1e9})),
    "one_expert_all_tokens": (70, 16, 8, 3, 2, dict(bias={1: 1e9})),
    "single_expert_gets_all": (21, 20, 12, 4, 1, dict(bias={2: 1e9})),
    "dropped_assignments": (40, 24, 20, 5, 2, dict(drop=0.4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_naive_float32(case, device):
    t, d, n, e, k, options = CASES[case]
    tokens, experts, offsets, scores = routing(t, e, k, seed=len(case), **options)
    counts = offsets.diff()
    if case == "empty_experts":
        assert (counts[[0, 3, 5]] == 0).all()
    if case in ("one_expert_all_tokens", "single_expert_gets_all"):
        assert int(counts.max()) == t
    if case == "dropped_assignments":
        assert torch.bincount(tokens, minlength=t).eq(0).any()  # some tokens keep no expert
    x, w1, w2, d_out = weights(t, d, n, e, seed=3, device=device)
    tokens, experts, offsets, scores = (v.to(device) for v in (tokens, experts, offsets, scores))
    ref, ref_grads = fwd_bwd(naive.expert_outputs, x, w1, w2, scores, d_out, tokens, experts)
    with poisoned_allocations():
        out, grads = fwd_bwd(ours, x, w1, w2, scores, d_out, tokens, offsets)
    assert out.shape == (t, d) and out.dtype == torch.float32
    assert rel_rms(ref, out) < 1e-5
    for name, r, g in zip(("x", "w1", "w2", "scores"), ref_grads, grads, strict=True):
        assert g.shape == r.shape and g.dtype == r.dtype, name
        assert rel_rms(r, g) < 1e-5, name


@pytest.mark.parametrize("swiglu_block", [64, 512])
def test_tile_overrides_match_naive(swiglu_block, device):
    """moe_experts_fwd/bwd under a config override (benchmarks/moe_experts.py --sweep), with one
    row (n = 72 -> 128 columns > 64) or four rows a program in the SwiGLU backward."""
    import dataclasses

    from redpajama.kernels.moe.experts import config_for, moe_experts_bwd, moe_experts_fwd

    t, d, n, e, k = 45, 40, 72, 6, 3
    tokens, experts, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=21))
    x, w1, w2, d_out = weights(t, d, n, e, seed=22, device=device)
    ref, ref_grads = fwd_bwd(naive.expert_outputs, x, w1, w2, scores, d_out, tokens, experts)
    base = config_for(torch.device(device))
    # Row tiles other than the default: 32 in the interpreter (16 by default), 64 on a GPU (128).
    block_m = 2 * base.block_m if device == "cpu" else base.block_m // 2
    cfg = dataclasses.replace(base, block_m=block_m, swiglu_block=swiglu_block)
    with poisoned_allocations():
        out, h = moe_experts_fwd(x, w1, w2, tokens, offsets, scores, cfg=cfg)
        grads = moe_experts_bwd(d_out, x, w1, w2, h, tokens, offsets, scores, cfg=cfg)
    assert rel_rms(ref, out) < 1e-5
    for name, r, g in zip(("x", "w1", "w2", "scores"), ref_grads, grads, strict=True):
        assert rel_rms(r, g) < 1e-5, name


def test_empty_expert_gets_zero_weight_gradient(device):
    # The kernels must write dW of an expert without rows (outputs are NaN-poisoned), as exact zeros.
    t, d, n, e, k = 20, 16, 12, 4, 1
    tokens, experts, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=5, bias={1: -1e9}))
    x, w1, w2, d_out = weights(t, d, n, e, seed=6, device=device)
    with poisoned_allocations():
        _, (_, dw1, dw2, _) = fwd_bwd(ours, x, w1, w2, scores, d_out, tokens, offsets)
    assert torch.equal(dw1[1], torch.zeros_like(dw1[1])) and torch.equal(dw2[1], torch.zeros_like(dw2[1]))
    assert torch.isfinite(dw1).all() and torch.isfinite(dw2).all()


def test_no_assignments(device):
    t, d, n, e = 5, 16, 8, 3
    x, w1, w2, d_out = weights(t, d, n, e, seed=7, device=device)
    tokens = torch.empty(0, dtype=torch.int64, device=device)
    offsets = torch.zeros(e + 1, dtype=torch.int64, device=device)
    scores = torch.empty(0, device=device)
    with poisoned_allocations():
        out, (dx, dw1, dw2, ds) = fwd_bwd(ours, x, w1, w2, scores, d_out, tokens, offsets)
    assert torch.equal(out, torch.zeros_like(out)) and torch.equal(dx, torch.zeros_like(dx))
    assert torch.equal(dw1, torch.zeros_like(dw1)) and torch.equal(dw2, torch.zeros_like(dw2))
    assert ds.shape == (0,)


def test_deterministic(device):
    t, d, n, e, k = 30, 16, 16, 3, 3
    tokens, _, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=8))
    x, w1, w2, d_out = weights(t, d, n, e, seed=9, device=device)
    first = fwd_bwd(ours, x, w1, w2, scores, d_out, tokens, offsets)
    second = fwd_bwd(ours, x, w1, w2, scores, d_out, tokens, offsets)
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32_reference(dtype, device):
    if dtype == torch.bfloat16 and device == "cpu":
        # Triton 3.9's interpreter keeps bf16 as uint16 and its tl.dot multiplies those bits.
        pytest.skip("bf16 tl.dot is wrong in Triton's CPU interpreter; runs on CUDA")
    t, d, n, e, k = 24, 32, 16, 3, 2
    tokens, experts, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=10))
    x, w1, w2, d_out = weights(t, d, n, e, seed=11, device=device)
    ref, ref_grads = fwd_bwd(naive.expert_outputs, x, w1, w2, scores, d_out, tokens, experts)
    with poisoned_allocations():
        out, grads = fwd_bwd(
            ours, x.to(dtype), w1.to(dtype), w2.to(dtype), scores, d_out.to(dtype), tokens, offsets
        )
    assert out.dtype == dtype and grads[0].dtype == dtype and grads[3].dtype == torch.float32
    # Roundings of H, A, Y and dH to 16 bits: a few times the dtype's epsilon in relative RMS.
    assert rel_rms(ref, out) < 2e-2
    for name, r, g in zip(("x", "w1", "w2", "scores"), ref_grads, grads, strict=True):
        assert rel_rms(r, g) < 2e-2, name


def test_saves_no_tensor_of_size_m_times_d(device):
    # M = 74, d = 24: M*d = 1776 matches no other tensor's size here (x 888, H 2960, w1 4800, w2 2400).
    t, d, n, e, k = 37, 24, 20, 5, 2
    tokens, _, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=12))
    x, w1, w2, _ = weights(t, d, n, e, seed=13, device=device)
    x, w1, w2, scores = (v.requires_grad_() for v in (x, w1, w2, scores))
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = moe_experts(x, w1, w2, tokens, offsets, scores)
    m = tokens.shape[0]
    assert all(s.numel() != m * d for s in saved)
    params = {w1.data_ptr(), w2.data_ptr()}
    state = sorted(tuple(s.shape) for s in saved if s.data_ptr() not in params)
    assert state == sorted([(t, d), (m, 2 * n), (m,), (e + 1,), (m,)])
    nbytes = sum(s.numel() * s.element_size() for s in saved if s.data_ptr() not in params)
    # REFERENCE C.2's memory anchor without the slack, here in float32: x, H, 8-byte token ids, 4-byte scores.
    assert nbytes == 4 * (t * d + m * 2 * n) + 12 * m + 8 * (e + 1)
    out.sum().backward()
    assert all(v.grad is not None for v in (x, w1, w2, scores))


def test_tile_map_covers_every_row_once(device):
    block = INTERPRETER_CONFIG.block_m
    counts = torch.tensor([0, 33, 16, 0, 1, 47, 0])
    offsets = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    offsets[1:] = counts.cumsum(0)
    m, e = int(offsets[-1]), counts.numel()
    tile_expert, tile_row = (v.cpu() for v in tile_map(offsets.to(device), m, block))
    real = tile_expert < e
    assert int(real.sum()) == sum(-(-int(c) // block) for c in counts)  # no empty tile
    assert not real[int(real.sum()) :].any()  # padding only at the end
    assert (tile_row[~real] == m).all()
    rows = []
    for expert, start in zip(tile_expert[real].tolist(), tile_row[real].tolist(), strict=True):
        assert offsets[expert] <= start < offsets[expert + 1]
        rows += range(start, min(start + block, int(offsets[expert + 1])))
    assert rows == list(range(m))


@pytest.mark.parametrize("num_experts, block", [(1, 16), (5, 1), (300, 4), (600, 128)])
def test_tile_map_equals_direct_construction(device, num_experts, block):
    # 300 and 600 experts take the kernel's loop over E more than once (256 experts a step).
    gen = torch.Generator().manual_seed(num_experts)
    counts = torch.randint(0, 3 * block, (num_experts,), generator=gen)
    counts[torch.rand(num_experts, generator=gen) < 0.3] = 0
    offsets = torch.zeros(num_experts + 1, dtype=torch.int64)
    offsets[1:] = counts.cumsum(0)
    m = int(offsets[-1])
    expected = [
        (expert, start)
        for expert in range(num_experts)
        for start in range(int(offsets[expert]), int(offsets[expert + 1]), block)
    ]
    bound = m // block + min(num_experts, m)
    expected += [(num_experts, m)] * (bound - len(expected))
    tile_expert, tile_row = tile_map(offsets.to(device), m, block)
    assert list(zip(tile_expert.tolist(), tile_row.tolist(), strict=True)) == expected


def test_token_order():
    tokens = torch.tensor([3, 0, 3, 1, 0, 3])
    order, start = token_order(tokens, 5)
    assert start.tolist() == [0, 2, 3, 3, 6, 6]
    assert order.tolist() == [1, 4, 3, 0, 2, 5]  # ascending assignment index within a token


def test_opcheck(device):
    t, d, n, e, k = 20, 16, 16, 3, 2
    tokens, _, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=14))
    x, w1, w2, d_out = weights(t, d, n, e, seed=15, device=device)
    args = (
        x.requires_grad_(),
        w1.requires_grad_(),
        w2.requires_grad_(),
        tokens,
        offsets,
        scores.requires_grad_(),
    )
    torch.library.opcheck(torch.ops.redpajama.moe_experts.default, args)
    _, h = torch.ops.redpajama.moe_experts(*args)
    bwd_args = (d_out, x.detach(), w1.detach(), w2.detach(), h, tokens, offsets, scores.detach())
    torch.library.opcheck(torch.ops.redpajama.moe_experts_bwd.default, bwd_args)


def test_compiles_without_graph_break(device):
    torch._dynamo.reset()
    compiled = torch.compile(moe_experts, fullgraph=True)
    t, d, n, e, k = 20, 16, 16, 3, 2
    tokens, experts, offsets, scores = (v.to(device) for v in routing(t, e, k, seed=16))
    x, w1, w2, d_out = weights(t, d, n, e, seed=17, device=device)
    ref, ref_grads = fwd_bwd(naive.expert_outputs, x, w1, w2, scores, d_out, tokens, experts)
    out, grads = fwd_bwd(compiled, x, w1, w2, scores, d_out, tokens, offsets)
    assert rel_rms(ref, out) < 1e-5
    assert all(rel_rms(r, g) < 1e-5 for r, g in zip(ref_grads, grads, strict=True))


def _args(**changes):
    t, d, n, e, m = 6, 8, 4, 3, 5
    args = dict(
        x=torch.ones(t, d),
        w1=torch.ones(e, d, 2 * n),
        w2=torch.ones(e, n, d),
        token_indices=torch.tensor([0, 1, 2, 3, 4]),
        expert_offsets=torch.tensor([0, 2, 2, m]),
        scores=torch.ones(m),
    )
    args.update(changes)
    return args


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(x=torch.ones(6, 8, 1)), ValueError, r"x must be \(T, d\).*\(6, 8, 1\)"),
        (dict(w1=torch.ones(3, 7, 8)), ValueError, r"d = 8.*\(3, 7, 8\)"),
        (dict(w1=torch.ones(3, 8, 7)), ValueError, r"even 2n"),
        (dict(w2=torch.ones(3, 4, 9)), ValueError, r"\(3, 4, 8\).*\(3, 4, 9\)"),
        (dict(x=torch.ones(6, 8, dtype=torch.float64)), TypeError, "float64"),
        (dict(w2=torch.ones(3, 4, 8, dtype=torch.bfloat16)), TypeError, "bfloat16"),
        (dict(token_indices=torch.tensor([0, 1, 2, 3, 4], dtype=torch.int32)), TypeError, "int32"),
        (dict(expert_offsets=torch.tensor([0, 2, 5])), ValueError, r"\(4,\).*\(3,\)"),
        (dict(scores=torch.ones(4)), ValueError, r"\(5,\).*\(4,\)"),
        (dict(x=torch.ones(8, 6).t()), ValueError, "contiguous"),
        (dict(scores=[1.0] * 5), TypeError, "scores must be a torch.Tensor"),
    ],
)
def test_rejects_bad_arguments(changes, error, match):
    with pytest.raises(error, match=match):
        moe_experts(**_args(**changes))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(expert_offsets=torch.tensor([1, 2, 2, 5])), "start at 0 and end at M = 5, got 1 .. 5"),
        (dict(expert_offsets=torch.tensor([0, 2, 2, 4])), "end at M = 5, got 0 .. 4"),
        (dict(expert_offsets=torch.tensor([0, 3, 2, 5])), r"offsets\[1\] = 3 > offsets\[2\] = 2"),
        (dict(token_indices=torch.tensor([0, 1, 6, 3, 4])), r"\[0, 6\), got min 0, max 6"),
    ],
)
def test_validate_rejects_bad_routing(changes, match):
    with pytest.raises(ValueError, match=match):
        moe_experts(**_args(**changes), validate=True)


@pytest.mark.parametrize("mode", [None, "up", "down"])
def test_kernels_take_the_routing_module_output(mode, device):
    """routing.py's Routing fields feed moe_experts directly and give the naive result."""
    from redpajama.kernels.moe.routing import route_token_rounding

    torch.manual_seed(3)
    t, d, n, e, k = 37, 24, 20, 5, 2
    x = torch.randn(t, d, device=device)
    w1, w2 = torch.randn(e, d, 2 * n, device=device) / d**0.5, torch.randn(e, n, d, device=device) / n**0.5
    r = route_token_rounding(torch.randn(t, e, device=device), k, tile=4, mode=mode)
    out = moe_experts(x, w1, w2, r.token_indices, r.expert_offsets, r.scores.detach())
    ref = naive.expert_outputs(x, w1, w2, r.token_indices, r.expert_indices, r.scores.detach())
    assert rel_rms(ref, out) < 1e-5
