"""Training throughput of our ablation model against a plain torch.compile'd Llama, same shape, same run.

Times the trainer's own optimizer step (`redpajama.training.trainer.step.train_step`: bf16 autocast,
our model, grad clipping, fused AdamW) and the baseline's equivalent loop (benchmarks/baselines/
plain_llama.py) on the same random token batches, with CUDA events around `--steps` steps after
`--warmup` steps (which hold compilation). Also measures the GPU's ceilings in the same process: a
dense bf16 8192^3 matmul and the matmul shapes of the model itself.

FLOPs per token = 6 x non-embedding parameters (the untied head counts; the input embedding does
not) + causal attention 6 * L * d * T; MFU is against the 989 TFLOP/s dense bf16 peak of an H200.

    python benchmarks/train_throughput.py --model 468m --seq-len 2048 --batch-size 16
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import kernel_times, print_kernel_times  # noqa: E402
from baselines.plain_llama import PlainLlama  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402
from redpajama.training.model import Transformer, model_config  # noqa: E402
from redpajama.training.model.flops import H200_BF16_DENSE_PEAK, training_flops_per_token  # noqa: E402
from redpajama.training.trainer.config import TrainConfig  # noqa: E402
from redpajama.training.trainer.optimizer import build_optimizer  # noqa: E402
from redpajama.training.trainer.step import train_step  # noqa: E402


def matmul_tflops(m: int, n: int, k: int) -> float:
    from triton.testing import do_bench

    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    ms = do_bench(lambda: a @ b, return_mode="median")
    return 2 * m * n * k / ms / 1e9


def time_steps(step, batches, warmup: int, steps: int, accumulate: int = 1) -> float:
    """Seconds per optimizer step over `steps` consecutive steps after `warmup`; each step takes
    `accumulate` micro-batches in turn from `batches`."""

    def run(i):
        step([batches[(i * accumulate + j) % len(batches)] for j in range(accumulate)])

    for i in range(warmup):
        run(i)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(steps):
        run(i)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / steps


def run_ours(
    args,
    batches,
    compile_mode: str = "model",
    profile: bool = False,
    inductor: dict | None = None,
    **overrides,
) -> dict:
    """Our model through the trainer's step; `inductor`: torch._inductor.config settings for its compile."""
    import torch._inductor.config as inductor_config

    torch.manual_seed(0)
    cfg = model_config(args.model, **overrides).replace(max_seq_len=args.seq_len)
    model = Transformer(cfg).cuda()
    flops = training_flops_per_token(model, args.seq_len)
    if args.compile and compile_mode == "model":
        model.compile()
    elif args.compile and compile_mode == "cudagraphs":
        # Inductor's CUDA-graph trees: forward and backward each replay as one graph.
        model.compile(mode="reduce-overhead")
    elif args.compile:
        model.compile_blocks()
    optim = build_optimizer(model, TrainConfig(data=Path("."), out=Path("."), lr=1e-4))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)

    losses = []

    def step(micro_batches):
        losses.append(train_step(model, optim, micro_batches, autocast, 1.0)[0])

    # torch.compile compiles lazily, in the first (warm-up) steps: the settings must hold there.
    with inductor_config.patch(**(inductor or {})):
        seconds = time_steps(step, batches, args.warmup, args.steps, args.accumulate)
    peak = torch.cuda.max_memory_allocated() / 2**30
    # Every step's loss: variants that only change how the same math is run must agree.
    out = {
        "seconds_per_step": seconds,
        "flops_per_token": flops,
        "peak_gib": peak,
        "losses": torch.stack(losses).tolist(),
    }
    if profile:
        print_kernel_times({"ours": kernel_times(lambda: step(batches[: args.accumulate]))}, rows=30)
    return out


def check_kernels_match(args, batch) -> dict:
    """Our Triton kernels inside the model against the PyTorch expressions, both against float32.

    Same weights and batch three ways: float32 without autocast (the reference), bf16 autocast with
    the PyTorch expressions, bf16 autocast with our kernels. Refuses to time anything when our
    kernels' worst relative gradient error exceeds 1.25x that of the PyTorch path (or 1e-2).
    """
    cfg = model_config(args.model).replace(max_seq_len=args.seq_len)
    runs = {}
    for name, kernels, bf16 in (
        ("fp32", False, False),
        ("torch-bf16", False, True),
        ("kernels-bf16", True, True),
    ):
        torch.manual_seed(0)
        model = Transformer(cfg.replace(kernels=kernels)).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = model(*batch)
        loss.backward()
        runs[name] = (loss.item(), {n: p.grad.float() for n, p in model.named_parameters()})
        del model
    ref_loss, ref = runs["fp32"]

    def errors(name):
        loss, grads = runs[name]
        worst = max(((grads[n] - ref[n]).norm() / ref[n].norm()).item() for n in ref)
        return abs(loss - ref_loss) / abs(ref_loss), worst

    out = {
        name: dict(zip(("loss_rel", "worst_grad_rel"), errors(name), strict=True))
        for name in runs
        if name != "fp32"
    }
    print(f"vs float32: {json.dumps(out)}", flush=True)
    if out["kernels-bf16"]["worst_grad_rel"] > max(1.25 * out["torch-bf16"]["worst_grad_rel"], 1e-2):
        sys.exit("our kernels are less accurate than the PyTorch path; not timing")
    return out


def run_baseline(args, batches, compiled: bool) -> dict:
    torch.manual_seed(0)
    cfg = model_config(args.model)
    model = PlainLlama(
        cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_hidden, args.seq_len
    ).cuda()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    forward = torch.compile(model) if compiled else model

    def step(micro_batches):
        for batch in micro_batches:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = forward(*batch) / len(micro_batches)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)

    seconds = time_steps(step, batches, args.warmup, args.steps, args.accumulate)
    peak = torch.cuda.max_memory_allocated() / 2**30
    return {"seconds_per_step": seconds, "peak_gib": peak}


def reset() -> None:
    gc.collect()
    torch._dynamo.reset()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="468m")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--accumulate",
        type=int,
        default=1,
        help="micro-batches of --batch-size per optimizer step (both sides)",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument(
        "--variants",
        default="ours,baseline",
        help="comma list: ours, ours-inductor-norms (Inductor's residual add + RMSNorm instead of our fused op), ours-cudagraphs (compile mode reduce-overhead), ours-cdt (Inductor coordinate-descent tuning), ours-max-autotune (Inductor's GEMM templates, which can fuse epilogues), ours-no-kernels-max-autotune, ours-flash, ours-triton-attn, ours-full-loss, ours-gta, baseline, baseline-eager",
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "train_throughput.json"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("train_throughput needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = model_config(args.model)
    micro = args.batch_size * args.seq_len
    tokens = micro * args.accumulate  # per optimizer step
    ceilings = {
        "matmul_8192_tflops": matmul_tflops(8192, 8192, 8192),
        "matmul_qkv_tflops": matmul_tflops(micro, 3 * cfg.d_model, cfg.d_model),
        "matmul_mlp_up_tflops": matmul_tflops(micro, 2 * cfg.mlp_hidden, cfg.d_model),
        "matmul_head_tflops": matmul_tflops(micro, cfg.vocab_size, cfg.d_model),
    }
    print(json.dumps(ceilings), flush=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    batches = [
        tuple(
            torch.randint(0, 50257, (args.batch_size, args.seq_len), device="cuda", generator=gen)
            for _ in range(2)
        )
        for _ in range(max(4, args.accumulate))
    ]
    variants = {
        "ours": lambda: run_ours(args, batches),
        "ours-cdt": lambda: run_ours(args, batches, inductor={"coordinate_descent_tuning": True}),
        "ours-max-autotune": lambda: run_ours(args, batches, inductor={"max_autotune": True}),
        "ours-no-kernels-max-autotune": lambda: run_ours(
            args, batches, inductor={"max_autotune": True}, kernels=False
        ),
        "ours-inductor-norms": lambda: run_ours(args, batches, fused_norms=False),
        "ours-cudagraphs": lambda: run_ours(args, batches, compile_mode="cudagraphs"),
        "ours-blocks": lambda: run_ours(args, batches, compile_mode="blocks"),
        "ours-no-kernels": lambda: run_ours(args, batches, kernels=False),
        "ours-profile": lambda: run_ours(args, batches, profile=True),
        "ours-flash": lambda: run_ours(args, batches, attention_backend="flash"),
        "ours-triton-attn": lambda: run_ours(args, batches, attention_backend="triton"),
        "ours-full-loss": lambda: run_ours(args, batches, loss="full"),
        "ours-gta": lambda: run_ours(args, batches, attention="gta", n_kv_heads=4),
        "ours-gqa4": lambda: run_ours(args, batches, n_kv_heads=4),
        "baseline": lambda: run_baseline(args, batches, compiled=True),
        "baseline-eager": lambda: run_baseline(args, batches, compiled=False),
    }
    # Four sequences are enough to compare gradients, and keep the eager float32 model in memory.
    kernel_check = check_kernels_match(args, tuple(t[:4] for t in batches[0]))
    results: dict[str, dict] = {}
    flops = None
    for name in args.variants.split(","):
        reset()
        t0 = time.perf_counter()
        try:
            out = variants[name]()
        except Exception as error:  # a variant that fails to compile must not hide the others
            print(f"{name}: FAILED {type(error).__name__}: {error}", flush=True)
            continue
        flops = out.get("flops_per_token", flops)
        out["wall_seconds"] = time.perf_counter() - t0
        out["tokens_per_s"] = tokens / out["seconds_per_step"]
        results[name] = out
        print(name, json.dumps(out), flush=True)
    if flops is None:
        reset()
        flops = training_flops_per_token(Transformer(cfg), args.seq_len)
    base = results.get("baseline", {}).get("tokens_per_s")
    print(
        f"\n{args.model} T={args.seq_len} B={args.batch_size} x {args.accumulate} micro-batches: FLOPs/token {flops / 1e9:.3f} G (6N + attention)"
    )
    print(f"{'variant':<16}{'tokens/s':>12}{'TFLOP/s':>10}{'MFU':>8}{'vs baseline':>13}{'peak GiB':>10}")
    for name, out in results.items():
        rate = out["tokens_per_s"]
        out["tflops"] = rate * flops / 1e12
        out["mfu"] = rate * flops / H200_BF16_DENSE_PEAK
        out["vs_baseline"] = rate / base if base else None
        ratio = f"{out['vs_baseline']:.3f}x" if base else "-"
        print(
            f"{name:<16}{rate:>12,.0f}{out['tflops']:>10.1f}{out['mfu']:>8.1%}{ratio:>13}{out['peak_gib']:>10.1f}"
        )
    if "ours" in results:
        for name, out in results.items():
            if name != "ours" and "losses" in out and len(out["losses"]) == len(results["ours"]["losses"]):
                diff = max(abs(a - b) for a, b in zip(out["losses"], results["ours"]["losses"], strict=True))
                out["loss_max_abs_diff_vs_ours"] = diff
                print(
                    f"{name}: largest step-loss difference from ours over {len(out['losses'])} steps: {diff:.3g}"
                )
    record = {
        "model": args.model,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "accumulate": args.accumulate,
        "steps": args.steps,
        "warmup": args.warmup,
        "flops_per_token": flops,
        "ceilings": ceilings,
        "kernel_check": kernel_check,
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "results": results,
    }
    write_json(args.output, record)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
