"""Plain-PyTorch MoE: the ground truth every MoE kernel and routing rule is tested against.

Shapes: T tokens of width d, E experts with SwiGLU hidden n, K experts per token.
- Router: logits = x @ router_w.T (T, E); top-K over E; scores = softmax over the K chosen logits
  (SonicMoE's token-choice routing; equal to the full softmax renormalised over the top K).
- Expert e: y = (silu(x W1[e][:, :n]) * (x W1[e][:, n:])) W2[e], W1 (E, d, 2n) [gate | up], W2 (E, n, d).
- Output: out[t] = sum over assignments (t, e) of score(t, e) * expert_e(x[t]).
An assignment list (token_indices, expert_indices, scores) describes any routing, top-K or rounded,
so the expert computation is written once, over assignments, and autograd gives every gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def topk_routing(logits: torch.Tensor, k: int):
    """Top-K over experts, softmax over the K logits. Returns (token_indices, expert_indices, scores),
    each (T*K,), token-major (token t's K assignments are rows t*K .. t*K+K-1, experts by descending
    logit). Scores carry gradients to the logits."""
    t = logits.shape[0]
    top_logits, top_experts = logits.topk(k, dim=-1)
    scores = torch.softmax(top_logits.float(), dim=-1)
    tokens = torch.arange(t, device=logits.device).repeat_interleave(k)
    return tokens, top_experts.reshape(-1), scores.reshape(-1)


def expert_outputs(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    token_indices: torch.Tensor,
    expert_indices: torch.Tensor,
    scores: torch.Tensor,
) -> torch.Tensor:
    """sum over assignments a of scores[a] * expert_{expert_indices[a]}(x[token_indices[a]]): (T, d).

    A loop over experts, in float32 math; differentiable in x, w1, w2 and scores.
    """
    n = w2.shape[1]
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    for e in range(w1.shape[0]):
        mask = expert_indices == e
        if not bool(mask.any()):
            continue
        tokens = token_indices[mask]
        h = x[tokens].float() @ w1[e].float()  # (m, 2n): the pre-activation
        y = (F.silu(h[:, :n]) * h[:, n:]) @ w2[e].float()  # (m, d)
        out = out.index_add(0, tokens, y * scores[mask].float()[:, None])
    return out.to(x.dtype)


def moe_naive(
    x: torch.Tensor, router_w: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, k: int
) -> torch.Tensor:
    """The whole MoE layer with top-K routing: x (T, d), router_w (E, d) -> (T, d)."""
    tokens, experts, scores = topk_routing(x @ router_w.t(), k)
    return expert_outputs(x, w1, w2, tokens, experts, scores)
