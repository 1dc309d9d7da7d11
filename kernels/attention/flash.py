"""Causal flash attention (FlashAttention-2 style) in Triton: forward, backward, torch custom ops.

Layouts (fla naming in the kernels: T tokens, H query heads, G key/value heads, K = Dqk, V = Dv):
q (B, T, H, K), k (B, T, G, K), v (B, T, G, V), o (B, T, H, V), lse (B, H, T) float32 (natural-log
logsumexp of each query's scaled scores). Query head h reads key/value head h // (H // G).

Forward: one program per (query block, query head); key/value tiles are streamed with an online
softmax in base 2, key tiles wholly before the query block run without masks, only the tiles on the
diagonal are masked, and fully masked (future) tiles are never visited.
Backward: a preprocess kernel writes delta = rowsum(dO * O) (B, H, T); a dK/dV kernel per (key
block, key/value head) loops over the H // G query heads of its group and over the query blocks at
or after the key block (the GQA sum happens in registers: no atomics, deterministic); a dQ kernel
per (query block, query head) loops over the key blocks up to the diagonal.
Varlen (packed sequences, B == 1, cu_seqlens (S+1,) int32): the programs take (segment, block)
pairs from a table built on the device without a host sync (its length is an upper bound; the
trailing entries are marked -1 and their programs exit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_HEAD_DIM = 256
LOG2E = 1.4426950408889634


@dataclass(frozen=True)
class Config:
    """Tiles of one run (no autotuning), per kernel: query rows (bt), key rows (bs), warps, stages.

    forward: one program holds fwd_bt query rows and streams key blocks of fwd_bs.
    dK/dV backward: one program holds dkdv_bs key rows and streams query blocks of dkdv_bt.
    dQ backward: one program holds dq_bt query rows and streams key blocks of dq_bs.
    The held block must be a multiple of the streamed one, so that the causal diagonal of a held
    block is a whole number of streamed blocks (the only ones that need a mask).
    """

    fwd_bt: int
    fwd_bs: int
    fwd_warps: int
    fwd_stages: int
    dkdv_bt: int
    dkdv_bs: int
    dkdv_warps: int
    dkdv_stages: int
    dq_bt: int
    dq_bs: int
    dq_warps: int
    dq_stages: int

    def __post_init__(self):
        for name, held, streamed in (
            ("fwd_bt/fwd_bs", self.fwd_bt, self.fwd_bs),
            ("dkdv_bs/dkdv_bt", self.dkdv_bs, self.dkdv_bt),
            ("dq_bt/dq_bs", self.dq_bt, self.dq_bs),
        ):
            if streamed < 1 or held % streamed:
                raise ValueError(
                    f"attention tiles {name} = {held}/{streamed}: the first must be a multiple of the second"
                )


# Triton's CPU interpreter (tests): 16-row tiles so tiny awkward shapes span several tiles.
INTERPRETER_CONFIG = Config(16, 16, 1, 1, 16, 16, 1, 1, 16, 16, 1, 1)


def config_for(device: torch.device, head_dim: int) -> Config:
    """H100-class tiles, picked by `benchmarks/attention.py --sweep` on an H200 (docs/benchmarks.md):
    64 x 64 tiles at 4 warps for every kernel, at head dims 64 and 128 alike; 3 shared-memory stages,
    except the backward above 64 where a third stage measured 10-20% slower. 8 warps, 128-row held
    blocks and (32, 128) backward tiles all measured slower (up to 2.1x in the backward)."""
    if device.type != "cuda":
        return INTERPRETER_CONFIG
    bwd_stages = 3 if head_dim <= 64 else 2
    return Config(64, 64, 4, 3, 64, 64, 4, bwd_stages, 64, 64, 4, bwd_stages)


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs get exact float32 products (tests compare at 1e-5; TF32 would give ~1e-3);
    # the setting does not apply to 16-bit inputs.
    return "ieee" if dtype == torch.float32 else "tf32"


def block_table(cu_seqlens: torch.Tensor, total: int, block: int) -> torch.Tensor:
    """(segment, block-in-segment) pairs of packed sequences, (N, 2) int32, without a host sync.

    cu_seqlens: (S+1,) int32 boundaries of S segments over `total` tokens. Segment s has
    cdiv(len_s, block) blocks; N = total // block + S bounds their sum (sum of cdiv(l, b) <=
    sum of (l // b + 1)). Entries past the last block hold segment -1.
    """
    num_seqs = cu_seqlens.shape[0] - 1
    counts = (cu_seqlens[1:] - cu_seqlens[:-1] + block - 1) // block  # (S,)
    ends = torch.cumsum(counts, 0)
    ids = torch.arange(total // block + num_seqs, device=cu_seqlens.device, dtype=ends.dtype)
    seq = torch.searchsorted(ends, ids, right=True)  # S past the last block
    valid = seq < num_seqs
    first = (ends - counts)[seq.clamp(max=num_seqs - 1)]
    table = torch.stack((torch.where(valid, seq, -1), torch.where(valid, ids - first, 0)), dim=1)
    return table.to(torch.int32).contiguous()


@triton.jit
def _locate_block(i_blk, i_b, cu_seqlens, block_indices, T, IS_VARLEN: tl.constexpr, REVERSE: tl.constexpr):
    """Where program block i_blk of batch row i_b works: (sequence, block in it, first row, rows).

    Varlen: from the device-built block table; a spare entry has sequence -1 and the caller returns.
    Fixed length: batch row i_b, with the heaviest causal blocks first when REVERSE (the tail of the
    launch then gets the short ones).
    """
    if IS_VARLEN:
        i_n = tl.load(block_indices + i_blk * 2)
        i_blk = tl.load(block_indices + i_blk * 2 + 1)
        i_seq = tl.maximum(i_n, 0)
        bos = tl.load(cu_seqlens + i_seq).to(tl.int64)
        T_seq = (tl.load(cu_seqlens + i_seq + 1) - bos).to(tl.int32)
    else:
        i_n = i_b
        if REVERSE:
            i_blk = tl.num_programs(0) - 1 - i_blk
        bos = i_b.to(tl.int64) * T
        T_seq = T
    return i_n, i_blk, bos, T_seq


@triton.jit
def flash_attn_fwd_kernel(
    q,
    k,
    v,
    o,
    lse,
    cu_seqlens,
    block_indices,
    scale,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BT: tl.constexpr,
    BS: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    IS_VARLEN: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_g = i_h // (H // G)
    i_n, i_t, bos, T_seq = _locate_block(i_t, i_b, cu_seqlens, block_indices, T, IS_VARLEN, True)
    if i_n < 0:
        return
    # LSE rows of this head: packed sequences (B == 1) sit at their offset bos within the head.
    o_lse = i_bh.to(tl.int64) * T + (bos if IS_VARLEN else 0)
    qk_scale = scale * 1.4426950408889634  # scores in base 2: exp(x) = exp2(x * log2(e))

    o_t = i_t * BT + tl.arange(0, BT)
    m_t = o_t < T_seq
    o_k = tl.arange(0, BK)
    m_k = o_k < K
    o_v = tl.arange(0, BV)
    m_v = o_v < V
    p_q = q + (bos + o_t[:, None]) * (H * K) + i_h * K + o_k[None, :]
    b_q = tl.load(p_q, mask=m_t[:, None] & m_k[None, :], other=0.0)

    b_m = tl.full([BT], float("-inf"), dtype=tl.float32)
    b_l = tl.zeros([BT], dtype=tl.float32)
    b_acc = tl.zeros([BT, BV], dtype=tl.float32)
    # Key blocks wholly before the query block: every key is visible to every query, no mask.
    for i_s in range(0, i_t * BT, BS):
        o_s = i_s + tl.arange(0, BS)
        p_k = k + (bos + o_s[None, :]) * (G * K) + i_g * K + o_k[:, None]
        b_k = tl.load(p_k, mask=m_k[:, None], other=0.0)
        p_v = v + (bos + o_s[:, None]) * (G * V) + i_g * V + o_v[None, :]
        b_v = tl.load(p_v, mask=m_v[None, :], other=0.0)
        # [BT, BK] @ [BK, BS] -> [BT, BS]
        b_s = tl.dot(b_q, b_k, input_precision=PRECISION) * qk_scale
        b_mn = tl.maximum(b_m, tl.max(b_s, 1))
        b_p = tl.exp2(b_s - b_mn[:, None])
        b_r = tl.exp2(b_m - b_mn)
        b_l = b_l * b_r + tl.sum(b_p, 1)
        # [BT, BS] @ [BS, BV] -> [BT, BV]
        b_acc = tl.dot(b_p.to(b_v.dtype), b_v, b_acc * b_r[:, None], input_precision=PRECISION)
        b_m = b_mn
    # Key blocks on the diagonal (up to the sequence end): causal mask. Later blocks are skipped.
    # The first diagonal block holds key i_t * BT, visible to every row: b_m is finite after it.
    for i_s in range(i_t * BT, tl.minimum((i_t + 1) * BT, T_seq), BS):
        o_s = i_s + tl.arange(0, BS)
        m_s = o_s < T_seq
        p_k = k + (bos + o_s[None, :]) * (G * K) + i_g * K + o_k[:, None]
        b_k = tl.load(p_k, mask=m_k[:, None] & m_s[None, :], other=0.0)
        p_v = v + (bos + o_s[:, None]) * (G * V) + i_g * V + o_v[None, :]
        b_v = tl.load(p_v, mask=m_s[:, None] & m_v[None, :], other=0.0)
        # [BT, BK] @ [BK, BS] -> [BT, BS]
        b_s = tl.dot(b_q, b_k, input_precision=PRECISION) * qk_scale
        b_s = tl.where((o_t[:, None] >= o_s[None, :]) & m_s[None, :], b_s, float("-inf"))
        b_mn = tl.maximum(b_m, tl.max(b_s, 1))
        b_p = tl.exp2(b_s - b_mn[:, None])
        b_r = tl.exp2(b_m - b_mn)
        b_l = b_l * b_r + tl.sum(b_p, 1)
        # [BT, BS] @ [BS, BV] -> [BT, BV]
        b_acc = tl.dot(b_p.to(b_v.dtype), b_v, b_acc * b_r[:, None], input_precision=PRECISION)
        b_m = b_mn

    b_o = b_acc / b_l[:, None]
    p_o = o + (bos + o_t[:, None]) * (H * V) + i_h * V + o_v[None, :]
    tl.store(p_o, b_o.to(p_o.dtype.element_ty), mask=m_t[:, None] & m_v[None, :])
    # Natural-log logsumexp of the scaled scores: (m + log2 l) / log2(e).
    b_lse = (b_m + tl.log2(b_l)) * 0.6931471805599453
    tl.store(lse + o_lse + o_t, b_lse, mask=m_t)


@triton.jit
def flash_attn_bwd_preprocess_kernel(
    o, do, delta, T, H: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr
):
    # delta[b, h, t] = sum_v O[b, t, h, v] * dO[b, t, h, v]; rows of all segments alike (varlen: B == 1).
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_t = i_t * BT + tl.arange(0, BT)
    m_t = o_t < T
    o_v = tl.arange(0, BV)
    m = m_t[:, None] & (o_v < V)[None, :]
    o_row = ((i_b.to(tl.int64) * T + o_t[:, None]) * H + i_h) * V + o_v[None, :]
    b_o = tl.load(o + o_row, mask=m, other=0.0).to(tl.float32)
    b_do = tl.load(do + o_row, mask=m, other=0.0).to(tl.float32)
    tl.store(delta + i_bh.to(tl.int64) * T + o_t, tl.sum(b_o * b_do, 1), mask=m_t)


@triton.jit
def flash_attn_bwd_dkdv_kernel(
    q,
    k,
    v,
    lse,
    delta,
    do,
    dk,
    dv,
    cu_seqlens,
    block_indices,
    scale,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BT: tl.constexpr,
    BS: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    IS_VARLEN: tl.constexpr,
    PRECISION: tl.constexpr,
):
    # One key block of one key/value head; sums over the H // G query heads of its group.
    i_s, i_bg = tl.program_id(0), tl.program_id(1)
    i_b, i_g = i_bg // G, i_bg % G
    i_n, i_s, bos, T_seq = _locate_block(i_s, i_b, cu_seqlens, block_indices, T, IS_VARLEN, False)
    if i_n < 0:
        return
    o_lse = bos if IS_VARLEN else bos * 0  # B == 1 when packed; the head offset is added per head
    qk_scale = scale * 1.4426950408889634

    o_s = i_s * BS + tl.arange(0, BS)
    m_s = o_s < T_seq
    o_k = tl.arange(0, BK)
    m_k = o_k < K
    o_v = tl.arange(0, BV)
    m_v = o_v < V
    p_k = k + (bos + o_s[:, None]) * (G * K) + i_g * K + o_k[None, :]
    b_k = tl.load(p_k, mask=m_s[:, None] & m_k[None, :], other=0.0)
    p_v = v + (bos + o_s[:, None]) * (G * V) + i_g * V + o_v[None, :]
    b_v = tl.load(p_v, mask=m_s[:, None] & m_v[None, :], other=0.0)
    b_dk = tl.zeros([BS, BK], dtype=tl.float32)
    b_dv = tl.zeros([BS, BV], dtype=tl.float32)

    for i_hg in range(0, H // G):
        i_h = i_g * (H // G) + i_hg
        # lse / delta rows of head i_h; the query rows past the sequence end read lse = +inf, so
        # their probabilities are exp2(-inf) = 0 without a mask.
        p_lse = lse + (i_b * H + i_h).to(tl.int64) * T + o_lse
        p_delta = delta + (i_b * H + i_h).to(tl.int64) * T + o_lse
        # Query blocks on the diagonal: causal mask.
        for i_t in range(i_s * BS, tl.minimum((i_s + 1) * BS, T_seq), BT):
            o_t = i_t + tl.arange(0, BT)
            m_t = o_t < T_seq
            p_q = q + (bos + o_t[:, None]) * (H * K) + i_h * K + o_k[None, :]
            b_q = tl.load(p_q, mask=m_t[:, None] & m_k[None, :], other=0.0)
            p_do = do + (bos + o_t[:, None]) * (H * V) + i_h * V + o_v[None, :]
            b_do = tl.load(p_do, mask=m_t[:, None] & m_v[None, :], other=0.0)
            b_lse = tl.load(p_lse + o_t, mask=m_t, other=float("inf")) * 1.4426950408889634
            b_delta = tl.load(p_delta + o_t, mask=m_t, other=0.0)
            # [BS, BK] @ [BK, BT] -> [BS, BT]
            b_st = tl.dot(b_k, tl.trans(b_q), input_precision=PRECISION) * qk_scale
            b_st = tl.where(
                (o_t[None, :] >= o_s[:, None]) & m_t[None, :], b_st - b_lse[None, :], float("-inf")
            )
            b_pt = tl.exp2(b_st)
            # [BS, BT] @ [BT, BV] -> [BS, BV]
            b_dv = tl.dot(b_pt.to(b_do.dtype), b_do, b_dv, input_precision=PRECISION)
            # [BS, BV] @ [BV, BT] -> [BS, BT]
            b_dpt = tl.dot(b_v, tl.trans(b_do), input_precision=PRECISION)
            b_dst = b_pt * (b_dpt - b_delta[None, :])
            # [BS, BT] @ [BT, BK] -> [BS, BK]
            b_dk = tl.dot(b_dst.to(b_q.dtype), b_q, b_dk, input_precision=PRECISION)
        # Query blocks wholly after the key block: no causal mask.
        for i_t in range((i_s + 1) * BS, T_seq, BT):
            o_t = i_t + tl.arange(0, BT)
            m_t = o_t < T_seq
            p_q = q + (bos + o_t[:, None]) * (H * K) + i_h * K + o_k[None, :]
            b_q = tl.load(p_q, mask=m_t[:, None] & m_k[None, :], other=0.0)
            p_do = do + (bos + o_t[:, None]) * (H * V) + i_h * V + o_v[None, :]
            b_do = tl.load(p_do, mask=m_t[:, None] & m_v[None, :], other=0.0)
            b_lse = tl.load(p_lse + o_t, mask=m_t, other=float("inf")) * 1.4426950408889634
            b_delta = tl.load(p_delta + o_t, mask=m_t, other=0.0)
            # [BS, BK] @ [BK, BT] -> [BS, BT]
            b_st = tl.dot(b_k, tl.trans(b_q), input_precision=PRECISION) * qk_scale
            b_pt = tl.exp2(b_st - b_lse[None, :])
            # [BS, BT] @ [BT, BV] -> [BS, BV]
            b_dv = tl.dot(b_pt.to(b_do.dtype), b_do, b_dv, input_precision=PRECISION)
            # [BS, BV] @ [BV, BT] -> [BS, BT]
            b_dpt = tl.dot(b_v, tl.trans(b_do), input_precision=PRECISION)
            b_dst = b_pt * (b_dpt - b_delta[None, :])
            # [BS, BT] @ [BT, BK] -> [BS, BK]
            b_dk = tl.dot(b_dst.to(b_q.dtype), b_q, b_dk, input_precision=PRECISION)

    p_dk = dk + (bos + o_s[:, None]) * (G * K) + i_g * K + o_k[None, :]
    tl.store(p_dk, (b_dk * scale).to(p_dk.dtype.element_ty), mask=m_s[:, None] & m_k[None, :])
    p_dv = dv + (bos + o_s[:, None]) * (G * V) + i_g * V + o_v[None, :]
    tl.store(p_dv, b_dv.to(p_dv.dtype.element_ty), mask=m_s[:, None] & m_v[None, :])


@triton.jit
def flash_attn_bwd_dq_kernel(
    q,
    k,
    v,
    lse,
    delta,
    do,
    dq,
    cu_seqlens,
    block_indices,
    scale,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BT: tl.constexpr,
    BS: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    IS_VARLEN: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_g = i_h // (H // G)
    i_n, i_t, bos, T_seq = _locate_block(i_t, i_b, cu_seqlens, block_indices, T, IS_VARLEN, True)
    if i_n < 0:
        return
    # LSE rows of this head: packed sequences (B == 1) sit at their offset bos within the head.
    o_lse = i_bh.to(tl.int64) * T + (bos if IS_VARLEN else 0)
    qk_scale = scale * 1.4426950408889634

    o_t = i_t * BT + tl.arange(0, BT)
    m_t = o_t < T_seq
    o_k = tl.arange(0, BK)
    m_k = o_k < K
    o_v = tl.arange(0, BV)
    m_v = o_v < V
    p_q = q + (bos + o_t[:, None]) * (H * K) + i_h * K + o_k[None, :]
    b_q = tl.load(p_q, mask=m_t[:, None] & m_k[None, :], other=0.0)
    p_do = do + (bos + o_t[:, None]) * (H * V) + i_h * V + o_v[None, :]
    b_do = tl.load(p_do, mask=m_t[:, None] & m_v[None, :], other=0.0)
    # Rows past the sequence end read lse = +inf: their probabilities are 0 without a mask.
    b_lse = tl.load(lse + o_lse + o_t, mask=m_t, other=float("inf")) * 1.4426950408889634
    b_delta = tl.load(delta + o_lse + o_t, mask=m_t, other=0.0)
    b_dq = tl.zeros([BT, BK], dtype=tl.float32)
    # Key blocks wholly before the query block: no mask.
    for i_s in range(0, i_t * BT, BS):
        o_s = i_s + tl.arange(0, BS)
        p_k = k + (bos + o_s[None, :]) * (G * K) + i_g * K + o_k[:, None]
        b_kt = tl.load(p_k, mask=m_k[:, None], other=0.0)
        p_v = v + (bos + o_s[None, :]) * (G * V) + i_g * V + o_v[:, None]
        b_vt = tl.load(p_v, mask=m_v[:, None], other=0.0)
        # [BT, BK] @ [BK, BS] -> [BT, BS]
        b_s = tl.dot(b_q, b_kt, input_precision=PRECISION) * qk_scale
        b_p = tl.exp2(b_s - b_lse[:, None])
        # [BT, BV] @ [BV, BS] -> [BT, BS]
        b_dp = tl.dot(b_do, b_vt, input_precision=PRECISION)
        b_ds = b_p * (b_dp - b_delta[:, None])
        # [BT, BS] @ [BS, BK] -> [BT, BK]
        b_dq = tl.dot(b_ds.to(b_kt.dtype), tl.trans(b_kt), b_dq, input_precision=PRECISION)
    # Key blocks on the diagonal: causal mask.
    for i_s in range(i_t * BT, tl.minimum((i_t + 1) * BT, T_seq), BS):
        o_s = i_s + tl.arange(0, BS)
        m_s = o_s < T_seq
        p_k = k + (bos + o_s[None, :]) * (G * K) + i_g * K + o_k[:, None]
        b_kt = tl.load(p_k, mask=m_k[:, None] & m_s[None, :], other=0.0)
        p_v = v + (bos + o_s[None, :]) * (G * V) + i_g * V + o_v[:, None]
        b_vt = tl.load(p_v, mask=m_v[:, None] & m_s[None, :], other=0.0)
        # [BT, BK] @ [BK, BS] -> [BT, BS]
        b_s = tl.dot(b_q, b_kt, input_precision=PRECISION) * qk_scale
        b_s = tl.where((o_t[:, None] >= o_s[None, :]) & m_s[None, :], b_s - b_lse[:, None], float("-inf"))
        b_p = tl.exp2(b_s)
        # [BT, BV] @ [BV, BS] -> [BT, BS]
        b_dp = tl.dot(b_do, b_vt, input_precision=PRECISION)
        b_ds = b_p * (b_dp - b_delta[:, None])
        # [BT, BS] @ [BS, BK] -> [BT, BK]
        b_dq = tl.dot(b_ds.to(b_kt.dtype), tl.trans(b_kt), b_dq, input_precision=PRECISION)

    p_dq = dq + (bos + o_t[:, None]) * (H * K) + i_h * K + o_k[None, :]
    tl.store(p_dq, (b_dq * scale).to(p_dq.dtype.element_ty), mask=m_t[:, None] & m_k[None, :])


def head_block(d: int) -> int:
    """Block width over a head dimension: a power of two, and at least 16 because tl.dot on a GPU
    needs every operand dimension >= 16 (the preprocess and backward contract over it)."""
    return max(16, triton.next_power_of_2(d))


def _grid_rows(cu_seqlens: torch.Tensor | None, batch: int, seqlen: int, block: int):
    """(number of row blocks, block table or None) for a kernel with `block` rows per program."""
    if cu_seqlens is None:
        return triton.cdiv(seqlen, block), None
    table = block_table(cu_seqlens, seqlen, block)
    return table.shape[0], table


def flash_attn_fwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor | None = None,
    cfg: Config | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, T, H, K), k (B, T, G, K), v (B, T, G, V) -> (o (B, T, H, V) in q's dtype, lse (B, H, T)
    float32). Arguments are assumed checked; inputs are made contiguous. `cfg` overrides the tiles
    (benchmarks/attention.py --sweep); None takes `config_for`."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    b, t, h, dk = q.shape
    g, dv = k.shape[2], v.shape[3]
    o = torch.empty((b, t, h, dv), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, h, t), dtype=torch.float32, device=q.device)
    if t == 0 or b == 0:
        return o, lse
    cfg = cfg or config_for(q.device, max(dk, dv))
    nt, table = _grid_rows(cu_seqlens, b, t, cfg.fwd_bt)
    flash_attn_fwd_kernel[(nt, b * h)](
        q,
        k,
        v,
        o,
        lse,
        cu_seqlens,
        table,
        1.0 / math.sqrt(dk),
        t,
        H=h,
        G=g,
        K=dk,
        V=dv,
        BT=cfg.fwd_bt,
        BS=cfg.fwd_bs,
        BK=head_block(dk),
        BV=head_block(dv),
        IS_VARLEN=cu_seqlens is not None,
        PRECISION=_precision(q.dtype),
        num_warps=cfg.fwd_warps,
        num_stages=cfg.fwd_stages,
    )
    return o, lse


def flash_attn_bwd(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    cu_seqlens: torch.Tensor | None = None,
    cfg: Config | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dO (B, T, H, V) and the forward's tensors -> (dq, dk, dv) in the dtypes of q, k, v. `cfg`
    overrides the tiles (its dkdv_* and dq_* fields); None takes `config_for`."""
    do, q, k, v, o = do.contiguous(), q.contiguous(), k.contiguous(), v.contiguous(), o.contiguous()
    b, t, h, dk = q.shape
    g, dv = k.shape[2], v.shape[3]
    dq = torch.empty_like(q)
    dk_out = torch.empty_like(k)
    dv_out = torch.empty_like(v)
    if t == 0 or b == 0:
        return dq, dk_out, dv_out
    cfg = cfg or config_for(q.device, max(dk, dv))
    bk, bv = head_block(dk), head_block(dv)
    delta = torch.empty((b, h, t), dtype=torch.float32, device=q.device)
    flash_attn_bwd_preprocess_kernel[(triton.cdiv(t, cfg.dq_bt), b * h)](
        o, do, delta, t, H=h, V=dv, BT=cfg.dq_bt, BV=bv, num_warps=cfg.dq_warps
    )
    common = dict(
        H=h, G=g, K=dk, V=dv, BK=bk, BV=bv, IS_VARLEN=cu_seqlens is not None, PRECISION=_precision(q.dtype)
    )
    scale = 1.0 / math.sqrt(dk)
    ns, table_s = _grid_rows(cu_seqlens, b, t, cfg.dkdv_bs)
    flash_attn_bwd_dkdv_kernel[(ns, b * g)](
        q, k, v, lse, delta, do, dk_out, dv_out, cu_seqlens, table_s, scale, t,
        BT=cfg.dkdv_bt, BS=cfg.dkdv_bs, num_warps=cfg.dkdv_warps, num_stages=cfg.dkdv_stages, **common,
    )  # fmt: skip
    nt, table_t = _grid_rows(cu_seqlens, b, t, cfg.dq_bt)
    flash_attn_bwd_dq_kernel[(nt, b * h)](
        q, k, v, lse, delta, do, dq, cu_seqlens, table_t, scale, t,
        BT=cfg.dq_bt, BS=cfg.dq_bs, num_warps=cfg.dq_warps, num_stages=cfg.dq_stages, **common,
    )  # fmt: skip
    return dq, dk_out, dv_out


# Custom ops: torch.compile keeps them in its graph (no graph break) as opaque calls. The forward
# returns lse as a second, non-differentiable output so that autograd can save it.
@torch.library.custom_op("redpajama::flash_attention", mutates_args=())
def flash_attention_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    return flash_attn_fwd(q, k, v, cu_seqlens)


@flash_attention_op.register_fake
def _(q, k, v, cu_seqlens):
    b, t, h, _ = q.shape
    o = q.new_empty((b, t, h, v.shape[3]))
    return o, q.new_empty((b, h, t), dtype=torch.float32)


@torch.library.custom_op("redpajama::flash_attention_bwd", mutates_args=())
def flash_attention_bwd_op(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    cu_seqlens: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return flash_attn_bwd(do, q, k, v, o, lse, cu_seqlens)


@flash_attention_bwd_op.register_fake
def _(do, q, k, v, o, lse, cu_seqlens):
    fmt = torch.contiguous_format
    return (
        torch.empty_like(q, memory_format=fmt),
        torch.empty_like(k, memory_format=fmt),
        torch.empty_like(v, memory_format=fmt),
    )


def _setup_context(ctx, inputs, output):
    q, k, v, cu_seqlens = inputs
    o, lse = output
    ctx.save_for_backward(q, k, v, o, lse, cu_seqlens)
    ctx.mark_non_differentiable(lse)
    ctx.set_materialize_grads(False)


def _backward(ctx, do, _dlse):
    if do is None:
        return None, None, None, None
    q, k, v, o, lse, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = flash_attention_bwd_op(do, q, k, v, o, lse, cu_seqlens)
    return dq, dk, dv, None


flash_attention_op.register_autograd(_backward, setup_context=_setup_context)


def check_arguments(q, k, v, cu_seqlens) -> None:
    """Raise TypeError/ValueError naming the offending numbers (shapes, dtypes, devices only)."""
    for name, value in dict(q=q, k=k, v=v).items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() != 4:
            raise ValueError(f"{name} must be 4-D (B, T, heads, dim), got shape {tuple(value.shape)}")
        if value.dtype not in DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, got {value.dtype}")
        if value.device != q.device:
            raise ValueError(f"{name} is on {value.device} but q is on {q.device}")
        if not 0 < value.shape[3] <= MAX_HEAD_DIM:
            raise ValueError(f"{name} head dim must be in 1..{MAX_HEAD_DIM}, got {value.shape[3]}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    (b, t, h, dqk), (bk, tk, g, dk), (bv, tv, gv, _) = q.shape, k.shape, v.shape
    if (bk, tk) != (b, t) or (bv, tv) != (b, t):
        raise ValueError(
            f"q, k, v must share (B, T): got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if dk != dqk:
        raise ValueError(f"k head dim {dk} must equal q head dim {dqk}")
    if gv != g:
        raise ValueError(f"k and v must have the same number of heads, got {g} and {gv}")
    if g == 0 or h % g != 0:
        raise ValueError(f"query heads H={h} must be a multiple of key/value heads G={g}")
    if cu_seqlens is None:
        return
    if not isinstance(cu_seqlens, torch.Tensor):
        raise TypeError(f"cu_seqlens must be a torch.Tensor or None, got {type(cu_seqlens).__name__}")
    if cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1 or cu_seqlens.shape[0] < 2:
        raise ValueError(
            f"cu_seqlens must be int32 of shape (S+1,), S >= 1, got {cu_seqlens.dtype} {tuple(cu_seqlens.shape)}"
        )
    if cu_seqlens.device != q.device:
        raise ValueError(f"cu_seqlens is on {cu_seqlens.device} but q is on {q.device}")
    if b != 1:
        raise ValueError(f"cu_seqlens needs packed sequences with batch size B=1, got B={b}")


def check_cu_seqlens_values(cu_seqlens: torch.Tensor, total: int) -> None:
    """Raise ValueError unless cu_seqlens starts at 0, ends at `total` and never decreases.

    Reads the values (one device sync); `flash_attention` calls it outside torch.compile.
    """
    first, last = int(cu_seqlens[0]), int(cu_seqlens[-1])
    if first != 0 or last != total:
        raise ValueError(f"cu_seqlens must run from 0 to T={total}, got {first} .. {last}")
    if bool((cu_seqlens[1:] < cu_seqlens[:-1]).any()):
        raise ValueError(f"cu_seqlens must be non-decreasing, got {cu_seqlens.tolist()}")


def flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None = None
) -> torch.Tensor:
    """Causal softmax attention softmax(q k^T / sqrt(Dqk)) v, FlashAttention-2 style.

    q: (B, T, H, Dqk); k: (B, T, G, Dqk); v: (B, T, G, Dv); H % G == 0 (GQA; G == 1 is MQA;
    Dqk != Dv allowed, e.g. GTA/GLA), head dims <= 256, one dtype of float16/bfloat16/float32,
    non-contiguous inputs are copied.
    cu_seqlens: optional int32 (S+1,) boundaries of packed sequences (B must be 1): attention stays
    causal within each [cu[s], cu[s+1]) and never crosses segments. Its values are checked (one
    sync) outside torch.compile.
    Returns o (B, T, H, Dv) in q's dtype. Differentiable in q, k, v (saves q, k, v, o and the float32
    lse (B, H, T)). Safe inside torch.compile(fullgraph=True).
    """
    check_arguments(q, k, v, cu_seqlens)
    if cu_seqlens is not None and not torch.compiler.is_compiling():
        check_cu_seqlens_values(cu_seqlens, q.shape[1])
    return flash_attention_op(q, k, v, cu_seqlens)[0]
