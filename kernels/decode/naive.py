"""Decode attention over a paged KV cache in plain PyTorch: the ground truth for `paged.py`.

The pages of each sequence are gathered into contiguous tensors and attended with a plain float32
softmax (one rounding to q's dtype at the end). Definitions (shapes in `gta_decode_naive` and
`gla_decode_naive`): query i of Q queries of a sequence of length L sits at position L - Q + i and
attends causally to keys 0 .. L - Q + i.
"""

from __future__ import annotations

import math

import torch


def gather_pages(cache: torch.Tensor, block_table: torch.Tensor, seq_len: int) -> torch.Tensor:
    """The first seq_len token rows of one sequence: cache (num_pages, page_size, ...) read through
    its row of the block table (max_pages,) -> (seq_len, ...)."""
    page_size = cache.shape[1]
    pages = block_table[: -(-seq_len // page_size)].long()
    return cache[pages].flatten(0, 1)[:seq_len]


def _decode(
    q_nope: torch.Tensor,
    q_rope: torch.Tensor,
    keys: torch.Tensor,
    k_rope: torch.Tensor,
    values: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """One sequence, float32: q_nope (Q, H, Dn), q_rope (Q, H, Dr), keys (L, G, Dn), k_rope (L, Dr),
    values (L, G, Dv) -> o (Q, H, Dv). Head h reads group h // (H // G)."""
    nq, h, g, length = q_nope.shape[0], q_nope.shape[1], keys.shape[1], keys.shape[0]
    keys = keys.repeat_interleave(h // g, dim=1)
    values = values.repeat_interleave(h // g, dim=1)
    scores = torch.einsum("qhd,shd->hqs", q_nope, keys) + torch.einsum("qhd,sd->hqs", q_rope, k_rope)
    pos = torch.arange(length - nq, length, device=q_nope.device)  # (Q,) positions of the queries
    future = torch.arange(length, device=q_nope.device)[None, :] > pos[:, None]  # (Q, L)
    probs = torch.softmax((scores * scale).masked_fill(future, float("-inf")), dim=-1)
    return torch.einsum("hqs,shd->qhd", probs, values)


def gta_decode_naive(
    q: torch.Tensor,
    kv: torch.Tensor,
    k_rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Grouped-tied attention decode: q (B, Q, H, D), kv (num_pages, page_size, G, D) (the tied
    key/value state), k_rope (num_pages, page_size, D/2) (one RoPE key shared by all heads),
    block_table int32 (B, max_pages), seq_lens int32 (B,), seq_lens >= Q.

    scores = (q[:D/2] . kv[:D/2] + q[D/2:] . k_rope) * scale, scale 1/sqrt(D) by default; values kv.
    Returns o (B, Q, H, D) in q's dtype.
    """
    d = q.shape[-1]
    r = d // 2
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    outs = []
    for b, length in enumerate(seq_lens.tolist()):
        kv_b = gather_pages(kv, block_table[b], length).float()
        rope_b = gather_pages(k_rope, block_table[b], length).float()
        qf = q[b].float()
        outs.append(_decode(qf[..., : d - r], qf[..., d - r :], kv_b[..., : d - r], rope_b, kv_b, scale))
    return torch.stack(outs).to(q.dtype)


def gla_decode_naive(
    q_latent: torch.Tensor,
    q_rope: torch.Tensor,
    latent: torch.Tensor,
    k_rope: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Grouped-latent attention decode with absorbed queries: q_latent (B, Q, H, Dl), q_rope
    (B, Q, H, Dr), latent (num_pages, page_size, G, Dl), k_rope (num_pages, page_size, Dr),
    block_table int32 (B, max_pages), seq_lens int32 (B,), seq_lens >= Q.

    Head h of group g = h // (H // G): scores = (q_latent[h] . latent[g] + q_rope[h] . k_rope) * scale
    (scale 1/sqrt(Dl + Dr) by default; pass the model's), o[h] = softmax(scores) @ latent[g], in the
    latent space (the up-projection to values is applied outside). Returns o (B, Q, H, Dl) in
    q_latent's dtype.
    """
    scale = 1.0 / math.sqrt(q_latent.shape[-1] + q_rope.shape[-1]) if scale is None else scale
    outs = []
    for b, length in enumerate(seq_lens.tolist()):
        lat_b = gather_pages(latent, block_table[b], length).float()
        rope_b = gather_pages(k_rope, block_table[b], length).float()
        outs.append(_decode(q_latent[b].float(), q_rope[b].float(), lat_b, rope_b, lat_b, scale))
    return torch.stack(outs).to(q_latent.dtype)
