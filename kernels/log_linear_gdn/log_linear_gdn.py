"""Log-linear Gated DeltaNet with Triton bucket passes: the per-chunk WY terms and the intra-chunk
levels in batched PyTorch (`chunked.chunk_terms`, `chunked.intra_chunk`, differentiable by autograd),
the Fenwick bucket states and the queries' reads of them in Triton (`buckets.py`, forward and
backward). The bucket states are the part the chunked path spends its time on: there they are
(K, K) transition matrices multiplied level by level; here each state passes each transition as
two thin products, M H = e H - K~^T (W H), without forming M.
"""

from __future__ import annotations

import torch

from redpajama.kernels.log_linear_gdn.buckets import bucket_reads, bucket_reads_bwd
from redpajama.kernels.log_linear_gdn.chunked import chunk_inputs, chunk_terms, intra_chunk
from redpajama.kernels.log_linear_gdn.naive import check_inputs
from redpajama.kernels.ssd.ssd import DTYPES


class BucketReadsFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qe, w, kt, u0, decay, lamw, dot_prec):
        out, _ = bucket_reads(qe, w, kt, u0, decay, lamw, dot_prec=dot_prec)
        ctx.save_for_backward(qe, w, kt, u0, decay, lamw)
        ctx.dot_prec = dot_prec
        return out

    @staticmethod
    def backward(ctx, d_out):
        return *bucket_reads_bwd(*ctx.saved_tensors, d_out.contiguous(), dot_prec=ctx.dot_prec), None


def fits_kernels(key_dim: int) -> bool:
    """Whether the kernels take keys of this head dim: a power of two >= 16 (whole key rows in a
    tile, and Triton's smallest dot)."""
    return key_dim >= 16 and key_dim & (key_dim - 1) == 0


def _check_kernel_args(q, v, chunk_size: int) -> None:
    for name, x in (("q", q), ("v", v)):
        if x.dtype not in DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, got {x.dtype}")
    if chunk_size < 16 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two >= 16, got {chunk_size}")
    if not fits_kernels(q.shape[-1]):
        raise ValueError(f"the key head dim must be a power of two >= 16, got {q.shape[-1]}")


def _by_head(x: torch.Tensor, head_axis: int) -> torch.Tensor:
    """(B, NC, ..., H at head_axis, ...) chunk terms -> (B*H, NC, C, D) contiguous for the kernels."""
    x = x.movedim(head_axis, 1)
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]).contiguous()


def log_linear_gdn(
    q, k, v, g, beta, lam, chunk_size: int = 64, dot_precision: str | None = None
) -> torch.Tensor:
    """o (B, T, H, V) = log_linear_gdn_quadratic(q, k, v, g, beta, lam): log-linear Gated DeltaNet.

    Shapes as `naive.py` (q, k (B, T, H, K) with K a power of two >= 16; v (B, T, H, V); g, beta
    (B, T, H); lam (B, T, H, L), L >= num_levels(T)); float16/bfloat16/float32 on one device;
    chunk_size a power of two >= 16. Math in float32, also under autocast; the kernels' dots take
    dot_precision ("ieee" or "tf32"; by default IEEE for float32 q, k, v and TF32 for 16-bit ones,
    finer than their own rounding). Returns v's dtype, differentiable in all six inputs.
    """
    if dot_precision is None:
        dot_precision = "ieee" if q.dtype == k.dtype == v.dtype == torch.float32 else "tf32"
    if dot_precision not in ("ieee", "tf32"):
        raise ValueError(f"dot_precision must be 'ieee' or 'tf32', got {dot_precision!r}")
    check_inputs(q, k, v, g, beta, lam)
    _check_kernel_args(q, v, chunk_size)
    # float32 also inside an autocast region (a bf16 training step), which would run the chunk terms'
    # products in bf16 and hand the kernels mixed dtypes.
    with torch.autocast(q.device.type, enabled=False):
        return _log_linear_gdn(q, k, v, g, beta, lam, chunk_size, dot_precision)


def _log_linear_gdn(q, k, v, g, beta, lam, chunk_size: int, dot_precision: str) -> torch.Tensor:
    b, t, h, _ = k.shape
    dv = v.shape[-1]
    (qc, kc, vc, gc, bc, lam_c), kb, nc, levels = chunk_inputs(
        q, k, v, g, beta, lam, chunk_size, torch.float32
    )
    terms = chunk_terms(qc, kc, vc, gc, bc)
    out = intra_chunk(terms, vc, lam_c, kb)
    if levels:
        inter = BucketReadsFunction.apply(
            _by_head(terms.qe, 3),
            _by_head(terms.w, 2),
            _by_head(terms.k_end, 3),
            _by_head(terms.u0, 2),
            _by_head(terms.decay[..., None, None], 2).reshape(b * h, nc),
            _by_head(lam_c[..., kb + 1 : kb + 1 + levels], 3),
            dot_precision,
        )
        out = out + inter.view(b, h, nc, chunk_size, dv).permute(0, 2, 3, 1, 4)
    return out.reshape(b, nc * chunk_size, h, dv)[:, :t].to(v.dtype)
