"""Memory-bound Triton kernels (SwiGLU, RoPE on fused QKV, residual add + RMSNorm, cross-entropy chunk)
against torch.compile.

For each op at the 468m model's shapes (B=16, T=2048, 16 q and 16 kv heads of 64, SwiGLU hidden
2816, vocab 50304 in chunks of 8192 rows) this times ours and the torch.compile'd `naive.py`
reference, medians of CUDA-graph replays (`triton.testing.do_bench_cudagraph`: GPU time, as inside a
compiled step; our eager time, with each call's launch and autograd overhead, beside it), forward
and forward+backward (backward alone is their difference), in bf16. Throughput is the op's minimal DRAM traffic (every input read once,
every output written once) over the time, next to a device-to-device copy measured in the same run
(bytes read + written). Before timing, each op is checked in bf16 against a float32 reference on
unit-scale inputs; a failure prints the errors and nothing is timed.

    python benchmarks/kernels_elementwise.py [--output benchmarks/results/kernels_elementwise.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import gpu_ms, versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402

# The 468m model's shapes (training/model/config.py) and the chunked loss's rows per chunk.
B, T, N_HEADS, N_KV, HEAD_DIM, HIDDEN, VOCAB, LAYERS = 16, 2048, 16, 16, 64, 2816, 50304, 24
D_MODEL = 1024
CE_ROWS = 8192
WIDTH = (N_HEADS + 2 * N_KV) * HEAD_DIM
# bf16 against a float32 reference: one rounding of the output is ~2^-9 relative RMS.
BF16_TOL = 1e-2
LOSS_TOL = 1e-4
DEVICE = "cuda"


def copy_gbps() -> float:
    src = torch.empty(2**29, dtype=torch.bfloat16, device=DEVICE)  # 1 GiB
    dst = torch.empty_like(src)
    # Eager, not from a CUDA graph: captured, a contiguous copy becomes a memcpy node that the copy
    # engine runs (2.77 TB/s on an H200) instead of a kernel on the SMs (4.2 TB/s). At 1 GiB a call,
    # launch overhead is noise.
    ms = gpu_ms(lambda: dst.copy_(src), eager=True)
    return 2 * src.numel() * src.element_size() / ms / 1e6


def forward(fn, x, *args):
    return lambda: fn(x, *args)


def fwd_bwd(fn, x, *args, grads):
    """Time-able closure: forward, then the gradient w.r.t. x only (no .grad accumulation)."""

    def run():
        return torch.autograd.grad(as_tuple(fn(x, *args)), x, grads)

    return run


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def unit(*shape, dtype=torch.float32, seed=0):
    """Standard-normal inputs (unit scale: small values would hide errors)."""
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(*shape, generator=gen, device=DEVICE, dtype=torch.float32).to(dtype)


def load_ops() -> dict:
    """op name -> (ours, naive reference, extra positional args after the input)."""
    from redpajama.kernels.cross_entropy import cross_entropy_chunk
    from redpajama.kernels.cross_entropy import naive as ce_naive
    from redpajama.kernels.rmsnorm import add_rmsnorm
    from redpajama.kernels.rmsnorm import naive as rmsnorm_naive
    from redpajama.kernels.rope import naive as rope_naive
    from redpajama.kernels.rope import rope_qkv
    from redpajama.kernels.swiglu import naive as swiglu_naive
    from redpajama.kernels.swiglu import swiglu
    from redpajama.training.model.layers import rope_tables

    cos, sin = (t.to(DEVICE) for t in rope_tables(T, HEAD_DIM, 10000.0))
    # The residual add's other operand (a module output) and the norm's float32 weight, as in the
    # model under autocast; y follows x's dtype (a no-op cast in the bf16 timing).
    y = unit(B * T, D_MODEL, dtype=torch.bfloat16, seed=11)
    weight = 1.0 + 0.1 * unit(D_MODEL, seed=12)
    return {
        "add_rmsnorm": (
            lambda x, y, w: add_rmsnorm(x, y.to(x.dtype), w),
            lambda x, y, w: rmsnorm_naive.add_rmsnorm(x, y.to(x.dtype), w, 1e-5),
            (y, weight),
        ),
        "swiglu": (swiglu, swiglu_naive.swiglu, ()),
        "rope_qkv": (rope_qkv, rope_naive.rope_qkv, (cos, sin, N_HEADS, N_KV)),
        "cross_entropy": (cross_entropy_chunk, ce_naive.cross_entropy_chunk, ()),
    }


def inputs(op: str, dtype, seed: int = 0):
    """(x, grads of the outputs) at the 468m shapes, grads laid out as the training step gives them."""
    if op == "swiglu":
        return unit(B * T, 2 * HIDDEN, dtype=dtype, seed=seed), (
            unit(B * T, HIDDEN, dtype=dtype, seed=seed + 1),
        )
    if op == "add_rmsnorm":
        # Gradients of h (from the stream's later adds) and of the normed output.
        return unit(B * T, D_MODEL, dtype=dtype, seed=seed), tuple(
            unit(B * T, D_MODEL, dtype=dtype, seed=seed + 1 + i) for i in range(2)
        )
    if op == "rope_qkv":
        # The attention backward hands dq/dk/dv over in its (B, H, T, D) layout, transposed back.
        grads = tuple(
            unit(B, n, T, HEAD_DIM, dtype=dtype, seed=seed + 1 + i).transpose(1, 2)
            for i, n in enumerate((N_HEADS, N_KV, N_KV))
        )
        return unit(B, T, WIDTH, dtype=dtype, seed=seed), grads
    raise ValueError(f"no autograd inputs for {op}")


def check(ops) -> dict[str, float]:
    """Relative RMS errors of ours in bf16 against the float32 reference, by output name."""
    from redpajama.kernels._testing import poisoned_allocations, rel_rms

    errors = {}
    for op in ("swiglu", "rope_qkv", "add_rmsnorm"):
        ours, naive, args = ops[op]
        x32, grads32 = inputs(op, torch.float32)
        x32.requires_grad_()
        ref = as_tuple(naive(x32, *args))
        (ref_grad,) = torch.autograd.grad(ref, x32, grads32)
        x16 = x32.detach().bfloat16().requires_grad_()
        # Outputs are allocated NaN-filled: an element a kernel skips shows up as a NaN error.
        with poisoned_allocations():
            out = as_tuple(ours(x16, *args))
            (grad,) = torch.autograd.grad(out, x16, tuple(g.bfloat16() for g in grads32))
        for i, (r, o) in enumerate(zip(ref, out, strict=True)):
            errors[f"{op}.out{i}"] = rel_rms(r, o)
        errors[f"{op}.grad"] = rel_rms(ref_grad, grad)
    ours, naive, _ = ops["cross_entropy"]
    logits = unit(CE_ROWS, VOCAB, dtype=torch.bfloat16, seed=3)
    targets = torch.randint(0, VOCAB, (CE_ROWS,), device=DEVICE)
    ref_grad = logits.float()  # the same bf16 values, in float32
    ref_loss = naive(ref_grad, targets, 1.0 / CE_ROWS)
    loss = ours(logits, targets, 1.0 / CE_ROWS)
    errors["cross_entropy.loss"] = rel_rms(ref_loss, loss)
    errors["cross_entropy.grad"] = rel_rms(ref_grad, logits)
    if not torch.isfinite(logits).all():
        errors["cross_entropy.grad"] = float("nan")
    return errors


def time_ops(ops, copy: float) -> list[dict]:
    e = 2  # bytes per bf16 value
    swiglu_fwd_bytes = 3 * B * T * HIDDEN * e  # read gate_up (2H), write out (H)
    rope_fwd_bytes = 2 * B * T * WIDTH * e  # read qkv, write q, k, v
    traffic = {
        ("swiglu", "fwd"): swiglu_fwd_bytes,
        ("swiglu", "fwd+bwd"): swiglu_fwd_bytes + 5 * B * T * HIDDEN * e,  # bwd: read 2H + H, write 2H
        ("rope_qkv", "fwd"): rope_fwd_bytes,
        ("rope_qkv", "fwd+bwd"): 2 * rope_fwd_bytes,  # bwd: read dq, dk, dv, write d_qkv
        ("add_rmsnorm", "fwd"): 4 * B * T * D_MODEL * e,  # read x, y, write h, out
        ("add_rmsnorm", "fwd+bwd"): 8 * B * T * D_MODEL * e,  # bwd: read d_h, d_out, h, write dx
    }
    calls = {"swiglu": LAYERS, "rope_qkv": LAYERS, "add_rmsnorm": 2 * LAYERS}
    rows = []
    for op in ("swiglu", "rope_qkv", "add_rmsnorm"):
        ours, naive, args = ops[op]
        compiled = torch.compile(naive, dynamic=False)
        x, grads = inputs(op, torch.bfloat16, seed=5)
        x_grad = x.detach().requires_grad_()
        timed = {
            "fwd": (forward(ours, x, *args), forward(compiled, x, *args)),
            "fwd+bwd": (
                fwd_bwd(ours, x_grad, *args, grads=grads),
                fwd_bwd(compiled, x_grad, *args, grads=grads),
            ),
        }
        for kind, (ours_fn, base_fn) in timed.items():
            r = row(op, kind, traffic[(op, kind)], gpu_ms(ours_fn), gpu_ms(base_fn), copy, calls[op])
            r["ours_ms_eager"] = gpu_ms(ours_fn, eager=True)
            rows.append(r)
    # The loss, one call per chunk. It rewrites its input, so each timed call runs on the previous
    # call's gradient: finite values, the same work.
    ours, naive, _ = ops["cross_entropy"]
    compiled = torch.compile(naive, dynamic=False)
    logits = unit(CE_ROWS, VOCAB, dtype=torch.bfloat16, seed=6)
    targets = torch.randint(0, VOCAB, (CE_ROWS,), device=DEVICE)
    ours_ms = gpu_ms(lambda: ours(logits, targets, 1.0 / CE_ROWS))
    base_ms = gpu_ms(lambda: compiled(logits, targets, 1.0 / CE_ROWS))
    ours_eager_ms = gpu_ms(lambda: ours(logits, targets, 1.0 / CE_ROWS), eager=True)
    # Minimal traffic is one read and one write of the chunk; pass 2's re-read counts as overhead.
    chunks_per_step = B * T // CE_ROWS
    rows.append(
        row("cross_entropy", "loss+grad", 2 * CE_ROWS * VOCAB * e, ours_ms, base_ms, copy, chunks_per_step)
    )
    rows[-1]["ours_ms_eager"] = ours_eager_ms
    return rows


def row(op, kind, nbytes, ours_ms, base_ms, copy, calls_per_step) -> dict:
    ideal_ms = nbytes / copy / 1e6
    return dict(
        op=op,
        kind=kind,
        bytes=nbytes,
        ideal_ms=ideal_ms,
        ours_ms=ours_ms,
        ours_gbps=nbytes / ours_ms / 1e6,
        ours_frac_of_copy=ideal_ms / ours_ms,
        compiled_naive_ms=base_ms,
        compiled_naive_gbps=nbytes / base_ms / 1e6,
        speedup=base_ms / ours_ms,
        calls_per_step=calls_per_step,
        ours_ms_per_step=ours_ms * calls_per_step,
        compiled_naive_ms_per_step=base_ms * calls_per_step,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "kernels_elementwise.json"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("kernels_elementwise: needs a CUDA GPU (none found); nothing timed.", file=sys.stderr)
        return 2

    ops = load_ops()
    errors = check(ops)
    failed = {
        name: err
        for name, err in errors.items()
        if not err < (LOSS_TOL if name == "cross_entropy.loss" else BF16_TOL)  # NaN fails too
    }
    print("bf16 vs float32 reference, relative RMS error:", json.dumps(errors, indent=1), flush=True)
    if failed:
        print(f"correctness check FAILED, not timing: {failed}", file=sys.stderr)
        return 1

    copy = copy_gbps()
    print(f"device-to-device copy: {copy:.0f} GB/s (read + written)", flush=True)
    rows = time_ops(ops, copy)
    header = (
        f"{'op':<14} {'pass':<10} {'ours ms':>8} {'GB/s':>6} {'%copy':>6} {'naive ms':>9} {'GB/s':>6} "
        f"{'x':>5} {'ms/step ours/naive':>20} {'ours eager ms':>14}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['op']:<14} {r['kind']:<10} {r['ours_ms']:8.3f} {r['ours_gbps']:6.0f} "
            f"{100 * r['ours_frac_of_copy']:5.0f}% {r['compiled_naive_ms']:9.3f} {r['compiled_naive_gbps']:6.0f} "
            f"{r['speedup']:5.2f} {r['ours_ms_per_step']:9.2f} / {r['compiled_naive_ms_per_step']:.2f} "
            f"{r['ours_ms_eager']:14.3f}"
        )
    result = dict(
        device=torch.cuda.get_device_name(),
        versions=versions("torch", "triton"),
        shapes=dict(
            batch=B,
            seq_len=T,
            n_heads=N_HEADS,
            n_kv_heads=N_KV,
            head_dim=HEAD_DIM,
            hidden=HIDDEN,
            vocab=VOCAB,
            ce_rows=CE_ROWS,
            layers=LAYERS,
        ),
        copy_gbps=copy,
        bf16_rel_rms=errors,
        rows=rows,
    )
    write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
