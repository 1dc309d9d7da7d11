"""Causal softmax attention in plain PyTorch: the ground truth for the Triton flash attention.

Math in float32 (one rounding to the input dtype at the end), scale 1/sqrt(Dqk), grouped heads
(GQA: query head h reads key/value head h // (H // G); G == 1 is MQA), Dqk != Dv allowed (GTA/GLA
pass K built from their tied state). Autograd gives the backward.
"""

from __future__ import annotations

import math

import torch


def _causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of sequences, float32: q (B, T, H, Dqk), k (B, T, G, Dqk), v (B, T, G, Dv) ->
    (o (B, T, H, Dv), lse (B, H, T)), lse the natural-log logsumexp of each query's scaled scores."""
    h, g, t = q.shape[2], k.shape[2], q.shape[1]
    k = k.repeat_interleave(h // g, dim=2)
    v = v.repeat_interleave(h // g, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # (B, H, T)
    o = torch.einsum("bhts,bshd->bthd", torch.softmax(scores, dim=-1), v)
    return o, lse


def attention_naive_with_lse(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`attention_naive` that also returns the float32 logsumexp lse (B, H, T) of the scaled scores."""
    qf, kf, vf = q.float(), k.float(), v.float()
    if cu_seqlens is None:
        o, lse = _causal(qf, kf, vf)
        return o.to(q.dtype), lse
    if q.shape[0] != 1:
        raise ValueError(f"cu_seqlens needs batch size 1 (packed sequences), got B={q.shape[0]}")
    outs, lses = [], []
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        o, lse = _causal(qf[:, start:end], kf[:, start:end], vf[:, start:end])
        outs.append(o)
        lses.append(lse)
    return torch.cat(outs, dim=1).to(q.dtype), torch.cat(lses, dim=2)


def attention_naive(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None = None
) -> torch.Tensor:
    """Causal attention softmax(q k^T / sqrt(Dqk)) v per head, float32 math.

    q: (B, T, H, Dqk); k: (B, T, G, Dqk); v: (B, T, G, Dv); H % G == 0.
    cu_seqlens: optional int32 (S+1,) segment boundaries of packed sequences (B must be 1): query i
    of segment [cu[s], cu[s+1]) attends to keys cu[s]..i only.
    Returns o (B, T, H, Dv) in q's dtype.
    """
    return attention_naive_with_lse(q, k, v, cu_seqlens)[0]
