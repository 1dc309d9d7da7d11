"""MoE experts (gathered grouped GEMMs, `redpajama.kernels.moe.experts`) against a compiled composite.

Shapes are REFERENCE C.2's anchors: MoE-A (T=24576, d=1536, n=256, E=128, K=8) and MoE-B
(T=16384, d=768, n=256, E=64, K=8) against the baseline; MoE-C (T=16384, d=768, n=256, E=256, K=8)
times our kernel on plain top-K routing against token rounding (nearest multiple of the 128-row tile)
of the same router (bar: >= 1.10x fwd+bwd). All use SwiGLU experts, a random router (weights std 0.02) with top-K
over E and softmax over the K logits (`routing.route_topk`), assignments sorted expert-major. The
routing itself is not timed; the timed call is the expert computation from (x, w1, w2, routing)
to out (T, d).

For each shape, in bf16:
1. Correctness first: ours (outputs NaN-poisoned) and the baseline against `naive.expert_outputs`
   in float32 on the same bf16-rounded inputs (unit-scale), forward and the gradients of x, w1, w2
   and scores, relative RMS < 2e-2. On any failure nothing is timed (exit status 1).
2. Medians of the training forward (inputs require grad) and of forward+backward
   (torch.autograd.grad of all four inputs) replayed from a CUDA graph
   (`triton.testing.do_bench_cudagraph`: GPU time, as in a captured or compiled step; the eager
   `do_bench` time, with every call's launch overhead, is recorded beside it), for ours and for the baseline:
   `torch._grouped_mm` composite (gather + grouped_mm + SwiGLU + grouped_mm + scores + index_add)
   if this torch has it, else a per-expert loop, wrapped in torch.compile. TFLOP/s with
   6*T*K*d*n (fwd) and 18*T*K*d*n (fwd+bwd), next to a dense 8192^3 bf16 matmul measured in the
   same run.
3. Bytes saved for backward (torch.autograd.graph.saved_tensors_hooks, parameters excluded, each
   storage counted once) against REFERENCE C.2's anchor 1.1 * (2*T*d + 2*T*K*2n) + 16*T*K, and the
   peak-memory increase of one forward+backward.

    python benchmarks/moe_experts.py [--output benchmarks/results/moe_experts.json]
    python benchmarks/moe_experts.py --sparsity    # token rounding at 512, 256 and 128 tokens an expert
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import gpu_ms, versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402

DEVICE = "cuda"
# name -> (T, d, n, E, K), REFERENCE C.2; floors/targets are its fwd+bwd TFLOP/s bars.
SHAPES = {
    "MoE-A": (24576, 1536, 256, 128, 8),
    "MoE-B": (16384, 768, 256, 64, 8),
}
# Token rounding against plain top-K on our own kernel (bar: >= 1.10x fwd+bwd).
ROUNDING_SHAPE = ("MoE-C", (16384, 768, 256, 256, 8))
ROUNDING_BAR = 1.10
# --sparsity: MoE-C's T, d and n with more experts or fewer picks, so each expert gets fewer tokens
# and a partial tile is a larger share of its work (SonicMoE reports its 1.16x at high sparsity).
SPARSITY_SHAPES = {
    "MoE-C (512 an expert)": ROUNDING_SHAPE[1],
    "E 512, K 8 (256 an expert)": (16384, 768, 256, 512, 8),
    "E 256, K 4 (256 an expert)": (16384, 768, 256, 256, 4),
    "E 512, K 4 (128 an expert)": (16384, 768, 256, 512, 4),
}
BARS = {
    "MoE-A": dict(floor_fwd_bwd=207, target_fwd_bwd=250, target_fwd=250, stretch_fwd_bwd=330),
    "MoE-B": dict(floor_fwd_bwd=135, target_fwd_bwd=200),
}
ROUTER_STD = 0.02
# bf16 results against a float32 reference: H, A, Y and dH are rounded to bf16 (2^-9 each).
BF16_TOL = 2e-2


def unit(*shape, seed: int, dtype=torch.float32):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(*shape, generator=gen, device=DEVICE, dtype=torch.float32).to(dtype)


def make_problem(t, d, n, e, k, seed=0, rounding: str = "topk"):
    """bf16 x, w1, w2, d_out (unit scale), float32 scores and the expert-major routing.

    rounding "topk" is plain top-K; "up", "down", "nearest" are SonicMoE token rounding to
    multiples of the kernel's row tile (`routing.route_token_rounding`).
    """
    from redpajama.kernels.moe.experts import GPU_CONFIG
    from redpajama.kernels.moe.routing import route_token_rounding

    x = unit(t, d, seed=seed).bfloat16()
    router_w = ROUTER_STD * unit(e, d, seed=seed + 1)
    routing = route_token_rounding(x.float() @ router_w.t(), k, tile=GPU_CONFIG.block_m, mode=rounding)
    tokens, experts, scores = routing.token_indices, routing.expert_indices, routing.scores
    offsets = routing.expert_offsets
    w1 = unit(e, d, 2 * n, seed=seed + 2).bfloat16()
    w2 = unit(e, n, d, seed=seed + 3).bfloat16()
    d_out = unit(t, d, seed=seed + 4).bfloat16()
    return dict(
        x=x,
        w1=w1,
        w2=w2,
        d_out=d_out,
        tokens=tokens,
        experts=experts,
        offsets=offsets,
        scores=scores.detach(),
    )


def ours_fn():
    from redpajama.kernels.moe.experts import moe_experts

    def run(x, w1, w2, tokens, offsets, scores):
        return moe_experts(x, w1, w2, tokens, offsets, scores)

    return run


def baseline_fn(counts: list[int]):
    """(name, fn(x, w1, w2, tokens, offsets, scores)) of the composite, torch.compile'd."""
    if hasattr(torch, "_grouped_mm"):

        def grouped(x, w1, w2, tokens, offsets, scores):
            n = w2.shape[1]
            ends = offsets[1:].to(torch.int32)
            h = torch._grouped_mm(x[tokens], w1, offs=ends)  # (M, 2n)
            a = F.silu(h[:, :n]) * h[:, n:]
            y = torch._grouped_mm(a, w2, offs=ends)  # (M, d)
            return torch.zeros_like(x).index_add(0, tokens, y * scores[:, None].to(y.dtype))

        return "torch._grouped_mm composite, compiled", torch.compile(grouped, dynamic=False)

    def loop(x, w1, w2, tokens, offsets, scores):
        n = w2.shape[1]
        out = torch.zeros_like(x)
        start = 0
        for e, count in enumerate(counts):  # host ints: static slices
            rows = slice(start, start + count)
            start += count
            if count == 0:
                continue
            h = x[tokens[rows]] @ w1[e]
            y = (F.silu(h[:, :n]) * h[:, n:]) @ w2[e]
            out = out.index_add(0, tokens[rows], y * scores[rows, None].to(y.dtype))
        return out

    return "per-expert loop, compiled", torch.compile(loop, dynamic=False)


def leaves(p):
    return [p[name].detach().clone().requires_grad_() for name in ("x", "w1", "w2", "scores")]


def call(fn, p, xs):
    x, w1, w2, scores = xs
    return fn(x, w1, w2, p["tokens"], p["offsets"], scores)


def check(p, fns) -> dict[str, float]:
    """Relative RMS errors of each fn (bf16) against naive.expert_outputs in float32."""
    from redpajama.kernels._testing import poisoned_allocations, rel_rms
    from redpajama.kernels.moe import naive

    ref_in = [p[name].detach().float().requires_grad_() for name in ("x", "w1", "w2", "scores")]
    x, w1, w2, scores = ref_in
    ref = naive.expert_outputs(x, w1, w2, p["tokens"], p["experts"], scores)
    ref_grads = torch.autograd.grad(ref, ref_in, p["d_out"].float())
    errors = {}
    for name, fn in fns.items():
        xs = leaves(p)
        # Our outputs are allocated NaN-filled (an element a kernel skips shows up as NaN); the
        # baseline is left alone (torch.compile must not trace or compile under the patch).
        with poisoned_allocations() if name == "ours" else contextlib.nullcontext():
            out = call(fn, p, xs)
            grads = torch.autograd.grad(out, xs, p["d_out"])
        errors[f"{name}.out"] = rel_rms(ref, out)
        for g_name, r, g in zip(("dx", "dw1", "dw2", "dscores"), ref_grads, grads, strict=True):
            errors[f"{name}.{g_name}"] = rel_rms(r, g)
        del out, grads
    del ref, ref_grads, ref_in
    return errors


def timings(fn, p) -> dict[str, float]:
    xs = leaves(p)

    def fwd():
        return call(fn, p, xs)

    def fwd_bwd():
        return torch.autograd.grad(call(fn, p, xs), xs, p["d_out"])

    return dict(
        fwd_ms=gpu_ms(fwd),
        fwd_bwd_ms=gpu_ms(fwd_bwd),
        fwd_ms_eager=gpu_ms(fwd, eager=True),
        fwd_bwd_ms_eager=gpu_ms(fwd_bwd, eager=True),
    )


def saved_bytes(fn, p) -> int:
    """Bytes of the tensors autograd saves for the backward of one forward, parameters excluded."""
    xs = leaves(p)
    params = {xs[1].untyped_storage().data_ptr(), xs[2].untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = call(fn, p, xs)
    del out
    return sum(seen.values())


def peak_increase(fn, p) -> int:
    """max_memory_allocated during one forward+backward, minus the memory allocated before it."""
    xs = leaves(p)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    grads = torch.autograd.grad(call(fn, p, xs), xs, p["d_out"])
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del grads
    return peak


def dense_tflops() -> float:
    a = unit(8192, 8192, seed=100, dtype=torch.bfloat16)
    b = unit(8192, 8192, seed=101, dtype=torch.bfloat16)
    ms = gpu_ms(lambda: a @ b)
    return 2 * 8192**3 / ms / 1e9


def run_shape(name, shape, dense) -> tuple[dict, bool]:
    t, d, n, e, k = shape
    p = make_problem(t, d, n, e, k)
    counts = p["offsets"].diff().tolist()
    base_name, base = baseline_fn(counts)
    fns = {"ours": ours_fn(), "baseline": base}
    errors = check(p, fns)
    print(f"{name}: bf16 vs float32 reference, relative RMS:", json.dumps(errors, indent=1), flush=True)
    failed = {key: err for key, err in errors.items() if not err < BF16_TOL}  # NaN fails too
    row = dict(
        shape=dict(T=t, d=d, n=n, E=e, K=k),
        baseline=base_name,
        tokens_per_expert=dict(min=min(counts), max=max(counts)),
        bf16_rel_rms=errors,
        bars_tflops=BARS[name],
    )
    if failed:
        print(f"{name}: correctness check FAILED, not timing: {failed}", file=sys.stderr)
        row["failed"] = failed
        return row, False
    flop_fwd, flop_fwd_bwd = 6 * t * k * d * n, 18 * t * k * d * n
    anchor = 1.1 * (2 * t * d + 2 * t * k * 2 * n) + 16 * t * k
    for label, fn in fns.items():
        times = timings(fn, p)
        row[label] = dict(
            **times,
            fwd_tflops=flop_fwd / times["fwd_ms"] / 1e9,
            fwd_bwd_tflops=flop_fwd_bwd / times["fwd_bwd_ms"] / 1e9,
            saved_bytes=saved_bytes(fn, p),
            peak_increase_bytes=peak_increase(fn, p),
        )
        row[label]["fwd_frac_of_dense"] = row[label]["fwd_tflops"] / dense
        row[label]["fwd_bwd_frac_of_dense"] = row[label]["fwd_bwd_tflops"] / dense
    row["saved_bytes_anchor"] = anchor
    row["ours"]["saved_bytes_within_anchor"] = row["ours"]["saved_bytes"] <= anchor
    row["speedup_fwd"] = row["baseline"]["fwd_ms"] / row["ours"]["fwd_ms"]
    row["speedup_fwd_bwd"] = row["baseline"]["fwd_bwd_ms"] / row["ours"]["fwd_bwd_ms"]
    return row, True


def tiles(counts: list[int], block_m: int) -> int:
    return sum(-(-c // block_m) for c in counts)


def run_rounding(name, shape, mode: str = "nearest") -> tuple[dict, bool]:
    """Our kernel on plain top-K routing and on token-rounded routing of the same router."""
    from redpajama.kernels.moe.experts import GPU_CONFIG

    t, d, n, e, k = shape
    row = dict(shape=dict(T=t, d=d, n=n, E=e, K=k), mode=mode, tile=GPU_CONFIG.block_m, bar=ROUNDING_BAR)
    ok = True
    for label in ("topk", mode):
        p = make_problem(t, d, n, e, k, rounding=label)
        counts = p["offsets"].diff().tolist()
        errors = check(p, {"ours": ours_fn()})
        failed = {key: err for key, err in errors.items() if not err < BF16_TOL}
        times = timings(ours_fn(), p) if not failed else {}
        m = sum(counts)
        row[label] = dict(
            assignments=m,
            tiles=tiles(counts, GPU_CONFIG.block_m),
            partial_tiles=sum(1 for c in counts if c % GPU_CONFIG.block_m),
            bf16_rel_rms=errors,
            **times,
        )
        if failed:
            print(f"{name} {label}: correctness check FAILED, not timing: {failed}", file=sys.stderr)
            row[label]["failed"] = failed
            ok = False
        else:
            # FLOPs of the rows actually computed (M assignments), for the record.
            row[label]["fwd_bwd_tflops"] = 18 * m * d * n / times["fwd_bwd_ms"] / 1e9
        del p
        torch.cuda.empty_cache()
    if ok:
        row["speedup_fwd"] = row["topk"]["fwd_ms"] / row[mode]["fwd_ms"]
        row["speedup_fwd_bwd"] = row["topk"]["fwd_bwd_ms"] / row[mode]["fwd_bwd_ms"]
    return row, ok


# Tiles tried by --sweep at MoE-B (one config for every kernel of a pass): (block_m, block_n,
# block_k, warps, stages[, swiglu_block]). block_m is also the token-rounding tile.
SWEEP = [
    (128, 128, 64, 8, 3),
    (128, 128, 64, 8, 3, 512),
    (128, 128, 64, 8, 3, 2048),
    (128, 128, 64, 8, 3, 4096),
    (128, 128, 64, 4, 3),
    (128, 128, 64, 8, 4),
    (128, 64, 64, 4, 4),
    (128, 256, 64, 8, 3),
    (128, 128, 32, 4, 4),
    (64, 128, 64, 4, 4),
    (64, 64, 64, 4, 4),
]


def sweep(name, shape) -> list[dict]:
    """Our forward and backward passes alone (no autograd) at each candidate config, checked first
    against the default config's results."""
    import dataclasses

    from triton.testing import do_bench

    from redpajama.kernels._testing import rel_rms
    from redpajama.kernels.moe.experts import GPU_CONFIG, moe_experts_bwd, moe_experts_fwd

    t, d, n, e, k = shape
    p = make_problem(t, d, n, e, k)
    args = (p["x"], p["w1"], p["w2"], p["tokens"], p["offsets"], p["scores"])
    out, h = moe_experts_fwd(*args)
    grads = moe_experts_bwd(p["d_out"], p["x"], p["w1"], p["w2"], h, *args[3:])
    rows = []
    for bm, bn, bk, warps, stages, *swiglu in SWEEP:
        cfg = dataclasses.replace(
            GPU_CONFIG,
            block_m=bm,
            block_n=bn,
            block_k=bk,
            num_warps=warps,
            num_stages=stages,
            swiglu_block=swiglu[0] if swiglu else GPU_CONFIG.swiglu_block,
        )
        row = dict(
            shape=name,
            block_m=bm,
            block_n=bn,
            block_k=bk,
            warps=warps,
            stages=stages,
            swiglu_block=cfg.swiglu_block,
            default=cfg == GPU_CONFIG,
        )
        try:
            o2, h2 = moe_experts_fwd(*args, cfg=cfg)
            g2 = moe_experts_bwd(p["d_out"], p["x"], p["w1"], p["w2"], h, *args[3:], cfg=cfg)
        except Exception as err:  # noqa: BLE001 - a config the GPU cannot run (shared memory)
            rows.append(dict(row, error=str(err)[:120]))
            continue
        row["rel_diff_to_default"] = max(
            rel_rms(a.float(), b.float()) for a, b in zip((out, *grads), (o2, *g2), strict=True)
        )
        row["fwd_ms"] = do_bench(lambda cfg=cfg: moe_experts_fwd(*args, cfg=cfg), return_mode="median")
        row["bwd_ms"] = do_bench(
            lambda cfg=cfg: moe_experts_bwd(p["d_out"], p["x"], p["w1"], p["w2"], h, *args[3:], cfg=cfg),
            return_mode="median",
        )
        row["fwd_bwd_tflops"] = 18 * t * k * d * n / (row["fwd_ms"] + row["bwd_ms"]) / 1e9
        rows.append(row)
        print(json.dumps(row), flush=True)
    return sorted(rows, key=lambda r: r.get("fwd_ms", float("inf")) + r.get("bwd_ms", float("inf")))


def rounding_line(name: str, r: dict) -> str:
    """One `run_rounding` row as a line: times, speedups against top-K and tiles."""
    rounded = r[r["mode"]]
    return (
        f"{name} token rounding ({r['mode']}, tile {r['tile']}) vs top-K on our kernel: "
        f"fwd {r['topk']['fwd_ms']:.3f} -> {rounded['fwd_ms']:.3f} ms ({r['speedup_fwd']:.3f}x), "
        f"fwd+bwd {r['topk']['fwd_bwd_ms']:.3f} -> {rounded['fwd_bwd_ms']:.3f} ms "
        f"({r['speedup_fwd_bwd']:.3f}x; bar {ROUNDING_BAR}x); tiles {r['topk']['tiles']} -> "
        f"{rounded['tiles']} ({r['topk']['partial_tiles']} partial on top-K)"
    )


def sparsity(output: Path) -> int:
    """Token rounding against top-K on our kernel at each of SPARSITY_SHAPES."""
    rows, ok = {}, True
    for name, shape in SPARSITY_SHAPES.items():
        rows[name], passed = run_rounding(name, shape)
        ok = ok and passed
        if "speedup_fwd_bwd" in rows[name]:
            print(rounding_line(name, rows[name]), flush=True)
        torch.cuda.empty_cache()
    write_json(
        output,
        dict(device=torch.cuda.get_device_name(), versions=versions("torch", "triton"), rows=rows),
    )
    print(f"wrote {output}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "moe_experts.json")
    parser.add_argument(
        "--sweep", action="store_true", help="time our passes at candidate tile configs (MoE-B)"
    )
    parser.add_argument(
        "--sparsity",
        action="store_true",
        help="token rounding against top-K at fewer tokens an expert (SPARSITY_SHAPES)",
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("moe_experts: needs a CUDA GPU (none found); nothing timed.", file=sys.stderr)
        return 2
    if args.sweep:
        rows = sweep("MoE-B", SHAPES["MoE-B"])
        write_json(args.output.with_name("moe_experts_sweep.json"), rows)
        for r in rows:
            if "fwd_ms" in r:
                print(
                    f"m{r['block_m']} n{r['block_n']} k{r['block_k']} w{r['warps']} s{r['stages']} "
                    f"swiglu {r['swiglu_block']}: fwd {r['fwd_ms']:.3f} "
                    f"bwd {r['bwd_ms']:.3f} ms, {r['fwd_bwd_tflops']:.0f} TFLOP/s{' (default)' if r['default'] else ''}"
                )
        return 0

    if args.sparsity:
        return sparsity(args.output.with_name("moe_experts_sparsity.json"))
    dense = dense_tflops()
    print(f"dense bf16 matmul 8192^3: {dense:.0f} TFLOP/s", flush=True)
    rows, ok = {}, True
    for name, shape in SHAPES.items():
        rows[name], passed = run_shape(name, shape, dense)
        ok = ok and passed
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    rounding_name, rounding_shape = ROUNDING_SHAPE
    rounding_row, passed = run_rounding(rounding_name, rounding_shape)
    ok = ok and passed
    header = f"{'shape':<6} {'impl':<9} {'fwd ms':>8} {'TFLOP/s':>8} {'f+b ms':>8} {'TFLOP/s':>8} {'saved MiB':>10} {'peak MiB':>9}"
    print(header)
    for name, row in rows.items():
        for label in ("ours", "baseline"):
            if label not in row:
                continue
            r = row[label]
            print(
                f"{name:<6} {label:<9} {r['fwd_ms']:8.3f} {r['fwd_tflops']:8.0f} {r['fwd_bwd_ms']:8.3f} "
                f"{r['fwd_bwd_tflops']:8.0f} {r['saved_bytes'] / 2**20:10.1f} {r['peak_increase_bytes'] / 2**20:9.1f}"
                f"   (eager, launch overhead included: fwd {r['fwd_ms_eager']:.3f}, f+b {r['fwd_bwd_ms_eager']:.3f} ms)"
            )
        if "ours" in row:
            print(
                f"{name:<6} speedup fwd {row['speedup_fwd']:.2f}x, fwd+bwd {row['speedup_fwd_bwd']:.2f}x; "
                f"saved-bytes anchor {row['saved_bytes_anchor'] / 2**20:.1f} MiB "
                f"({'met' if row['ours']['saved_bytes_within_anchor'] else 'MISSED'})"
            )
    if "speedup_fwd_bwd" in rounding_row:
        print(rounding_line(rounding_name, rounding_row))
    result = dict(
        device=torch.cuda.get_device_name(),
        versions=versions("torch", "triton"),
        dense_bf16_tflops=dense,
        router_std=ROUTER_STD,
        flops="fwd 6*T*K*d*n, fwd+bwd 18*T*K*d*n; times: CUDA-graph median (ms), *_eager: do_bench median; fwd is the training forward",
        rows=rows,
        token_rounding=rounding_row,
    )
    write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
