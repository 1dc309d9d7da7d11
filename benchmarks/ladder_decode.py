"""Ladder Residual vs the standard block: one-GPU training step time, and tensor-parallel decode.

REFERENCE C, LADDER-A. Two measurements, GPU only (the script exits with a message without CUDA):

    python benchmarks/ladder_decode.py step --model 468m
        One GPU: the trainer's optimizer step (bf16 autocast, whole-model torch.compile, fused AdamW)
        of `LadderTransformer` vs `Transformer` at the same shape and batches. Same FLOPs, same
        kernels, only the order of the residual adds differs: target |ladder/standard - 1| <= 1%.
        The two are timed in alternating rounds (median of the rounds) so clock drift hits both.

    NCCL_NVLS_ENABLE=0 torchrun --standalone --nproc_per_node=2 benchmarks/ladder_decode.py decode
        TP = world size: greedy decode tokens/s of `TensorParallelTransformer` standard vs ladder for
        batch sizes 1..16, with a static KV cache and the whole one-token step captured in a CUDA
        graph (eager decode at this size is bound by kernel launches, which would hide the very
        all-reduce latency the ladder overlaps). Also, per batch size: the time of the step's 2L
        all-reduces alone (captured the same way, same tensors: the communication share of the
        standard step is that time over the step's) and the step with the all-reduces removed (the
        no-communication bound a perfect overlap could reach). The bar: ladder > 1.0x standard; the
        paper's repo reports 1.04-1.14x at TP=2/4.

Keep NVLink multicast off (NCCL_NVLS_ENABLE=0; the lent H200 hosts set it, and a program that uses it
can take a shared host's GPUs out of service). Weights are random (bf16): decode speed does not depend
on their values. Before timing, the cached decode is checked against the model's full forward, and
the sharded model's logits against the same weights unsharded on one GPU (rows record both).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redpajama.training.model import Transformer, model_config
from redpajama.training.model.ladder import LadderTransformer
from redpajama.training.model.residual import LOCAL, ladder_residual, sequential_residual
from redpajama.training.model.tensor_parallel import TensorParallelTransformer


# --------------------------------------------------------------------------- one-GPU training step
def step_time(args) -> dict:
    from redpajama.training.trainer.config import TrainConfig
    from redpajama.training.trainer.optimizer import build_optimizer
    from redpajama.training.trainer.step import train_step

    cfg = model_config(args.model, fused_norms=args.fused_norms)
    train_cfg = TrainConfig(
        data=Path("."), out=Path("."), model=args.model, seq_len=args.seq_len, batch_size=args.batch_size
    )
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.seq_len)
    tokens = [torch.randint(0, cfg.vocab_size, shape, generator=gen).cuda() for _ in range(5)]
    batches = [(tokens[i], tokens[i + 1]) for i in range(4)]  # (inputs, targets)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    runners = {}
    for name, cls in (("standard", Transformer), ("ladder", LadderTransformer)):
        torch.manual_seed(0)
        model = cls(cfg).cuda()
        if args.compile:
            model.compile()
        optimizer = build_optimizer(model, train_cfg)
        runners[name] = (model, optimizer)
        for i in range(args.warmup):  # compilation and autotuning
            train_step(model, optimizer, [batches[i % 4]], autocast, 1.0)
    torch.cuda.synchronize()
    rounds: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        # Alternate which model goes first (ABBA): a clock or power drift within a round then hits
        # both the same (with a fixed order the second was 1.3% slower while its kernels were not).
        for name in list(runners) if r % 2 == 0 else list(runners)[::-1]:
            model, optimizer = runners[name]
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for i in range(args.steps):
                train_step(model, optimizer, [batches[i % 4]], autocast, 1.0)
            end.record()
            torch.cuda.synchronize()
            rounds[name].append(start.elapsed_time(end) / args.steps)
    ms = {name: statistics.median(times) for name, times in rounds.items()}
    kernel_ms = None
    if args.profile:
        from _common import kernel_times, print_kernel_times

        profiles = {
            name: kernel_times(lambda m=model, o=optimizer: train_step(m, o, [batches[0]], autocast, 1.0))
            for name, (model, optimizer) in runners.items()
        }
        print_kernel_times(profiles, rows=40)
        kernel_ms = {name: sum(t for t, _ in times.values()) for name, times in profiles.items()}
    return {
        "bench": "ladder_step",
        "model": args.model,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "compile": args.compile,
        "standard_ms": ms["standard"],
        "ladder_ms": ms["ladder"],
        "ladder_over_standard": ms["ladder"] / ms["standard"],
        "within_1pct": abs(ms["ladder"] / ms["standard"] - 1) <= 0.01,
        "gpu_kernel_ms": kernel_ms,
        "rounds_ms": rounds,
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
    }


# --------------------------------------------------------------------------- tensor-parallel decode
class StaticDecoder:
    """One-token decode step of a TP model with a static KV cache: fixed shapes, so CUDA-graphable.

    Buffers: `ids` (B, 1) the step's input token, `pos` (1,) its position; the step writes the
    greedy next token into `ids` and advances `pos`, so replaying the graph N times decodes N tokens.
    """

    def __init__(self, model: TensorParallelTransformer, batch: int, max_len: int, flow: str, comm) -> None:
        self.model, self.flow, self.comm = model, flow, comm
        dev, dtype = model.head.weight.device, model.head.weight.dtype
        attn = model.blocks[0].attn
        shape = (batch, attn.n_kv, max_len, attn.head_dim)
        self.caches = [
            (torch.zeros(shape, device=dev, dtype=dtype), torch.zeros(shape, device=dev, dtype=dtype))
        ]
        self.caches += [tuple(torch.zeros_like(c) for c in self.caches[0]) for _ in model.blocks[1:]]
        self.ids = torch.zeros(batch, 1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.steps = torch.arange(max_len, device=dev)
        self.logits: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None

    def _attention(self, attn, cache, cos, sin, mask):
        k_cache, v_cache = cache

        def run(h: torch.Tensor) -> torch.Tensor:
            q, k, v = attn.project(h, cos, sin)  # (B, 1, heads, D): this rank's heads
            k_cache.index_copy_(2, self.pos, k.transpose(1, 2))
            v_cache.index_copy_(2, self.pos, v.transpose(1, 2))
            out = F.scaled_dot_product_attention(
                q.transpose(1, 2), k_cache, v_cache, attn_mask=mask, enable_gqa=True
            )
            return attn.w_out(out.transpose(1, 2).flatten(2))

        return run

    @torch.no_grad()
    def step(self) -> None:
        model = self.model
        x = model.embed(self.ids)
        cos, sin = model.rope_cos.index_select(0, self.pos), model.rope_sin.index_select(0, self.pos)
        mask = (self.steps <= self.pos)[None, None, None, :]
        modules = []
        for block, cache in zip(model.blocks, self.caches, strict=True):
            modules.append((block.attn_norm, self._attention(block.attn, cache, cos, sin, mask)))
            modules.append((block.mlp_norm, block.mlp))
        loop = ladder_residual if self.flow == "ladder" else sequential_residual
        self.logits = model.head(loop(x, modules, model.norm, self.comm))[:, -1].float()
        self.ids.copy_(self.logits.argmax(-1, keepdim=True))
        self.pos.add_(1)

    def capture(self) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up outside the graph (allocator, NCCL communicators, Triton)
                self.step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()

    def run(self) -> None:
        if self.graph is None:
            self.step()
        else:
            self.graph.replay()

    def prefill(self, prompt: torch.Tensor) -> None:
        """Feed the prompt one token at a time (not timed): fills the cache through the same step."""
        self.pos.zero_()
        for t in range(prompt.shape[1]):
            self.ids.copy_(prompt[:, t : t + 1])
            self.run()


def check_decoder(model, flow: str, comm, prompt: torch.Tensor, new: int) -> float:
    """Relative error of the cached decode's last logits against the model's full forward."""
    dec = StaticDecoder(model, prompt.shape[0], prompt.shape[1] + new, flow, comm)
    dec.prefill(prompt)
    tokens = [prompt, dec.ids.clone()]
    for _ in range(new - 1):
        dec.run()
        tokens.append(dec.ids.clone())
    seq = torch.cat(tokens[:-1], dim=1)
    with torch.no_grad():
        want = model(seq)[:, -1].float()
    return ((dec.logits - want).norm() / want.norm()).item()


def time_decode(dec: StaticDecoder, prompt: torch.Tensor, new: int, repeats: int) -> float:
    """Median seconds per decoded token (all B sequences advance one token per step)."""
    times = []
    for _ in range(repeats):
        dec.prefill(prompt)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(new):
            dec.run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / new)
    return statistics.median(times)


def time_all_reduces(batch: int, d_model: int, count: int, dtype, repeats: int, graph: bool) -> float:
    """Seconds for `count` back-to-back all-reduces of (batch, 1, d_model): one decode step's traffic."""
    import torch.distributed as dist

    bufs = [torch.randn(batch, 1, d_model, device="cuda", dtype=dtype) for _ in range(count)]

    def burst() -> None:
        for b in bufs:
            dist.all_reduce(b)

    for _ in range(3):
        burst()
    torch.cuda.synchronize()
    run = burst
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            burst()
        run = g.replay
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / 10)
    return statistics.median(times)


def tp_equals_one_gpu(cfg, models: dict, tokens: torch.Tensor) -> dict:
    """The sharded models' logits against the same weights unsharded on one GPU (bf16).

    Only the order of the partial sums differs, so the relative error sits at bf16 rounding and the
    greedy next tokens agree but for near-ties.
    """
    out = {}
    for flow, model in models.items():
        torch.manual_seed(0)  # the weights TensorParallelTransformer was built from
        single = (LadderTransformer if flow == "ladder" else Transformer)(cfg).cuda()
        for part in (single.embed, single.blocks, single.norm, single.head):
            part.to(torch.bfloat16)
        with torch.no_grad():
            want, got = single.eval()(tokens).float(), model(tokens).float()
        out[f"{flow}_tp_vs_one_gpu_rel_err"] = ((got - want).norm() / want.norm()).item()
        out[f"{flow}_tp_vs_one_gpu_argmax_agree"] = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
        del single
    return out


def decode(args) -> list[dict]:
    import torch.distributed as dist

    if os.environ.get("NCCL_NVLS_ENABLE") != "0":
        print("set NCCL_NVLS_ENABLE=0 (NVLink multicast off) before running this benchmark", file=sys.stderr)
        sys.exit(2)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    if "WORLD_SIZE" in os.environ:
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    world = dist.get_world_size() if dist.is_initialized() else 1
    cfg = model_config(args.model)
    dtype = torch.bfloat16
    models = {}
    for flow in ("standard", "ladder"):
        torch.manual_seed(0)  # same weights on every rank and in both flows
        model = TensorParallelTransformer(cfg, ladder=flow == "ladder").cuda()
        for part in (model.embed, model.blocks, model.norm, model.head):
            part.to(dtype)  # parameters only: the RoPE tables stay float32
        models[flow] = model.eval()
    gen = torch.Generator().manual_seed(1)
    equal = tp_equals_one_gpu(cfg, models, torch.randint(0, cfg.vocab_size, (4, 64), generator=gen).cuda())
    rows = []
    for batch in args.batch_sizes:
        prompt = torch.randint(0, cfg.vocab_size, (batch, args.prompt_len), generator=gen).cuda()
        row: dict = {"bench": "ladder_decode", "model": args.model, "tp": world, "batch": batch}
        row["cuda_graph"] = args.cuda_graph
        row.update(equal)
        for flow, model in models.items():
            err = check_decoder(model, flow, model.comm, prompt[:, :16], 8)
            if err > 3e-2:
                raise SystemExit(f"{flow} cached decode disagrees with the full forward: rel err {err:.3g}")
            row[f"{flow}_check_rel_err"] = err
            dec = StaticDecoder(model, batch, args.prompt_len + args.new_tokens, flow, model.comm)
            if args.cuda_graph:
                dec.capture()
            row[f"{flow}_tokens_per_s"] = batch / time_decode(dec, prompt, args.new_tokens, args.repeats)
        # The standard step with the all-reduces removed (wrong numbers, same compute).
        dec = StaticDecoder(models["standard"], batch, args.prompt_len + args.new_tokens, "standard", LOCAL)
        if args.cuda_graph:
            dec.capture()
        step_no_comm = time_decode(dec, prompt, args.new_tokens, args.repeats)
        step_std = batch / row["standard_tokens_per_s"]
        comm = 0.0
        if world > 1:
            comm = time_all_reduces(
                batch, cfg.d_model, 2 * cfg.n_layers, dtype, args.repeats, args.cuda_graph
            )
        row.update(
            ladder_speedup=row["ladder_tokens_per_s"] / row["standard_tokens_per_s"],
            standard_step_ms=step_std * 1e3,
            all_reduces_ms=comm * 1e3,
            comm_share=comm / step_std,
            no_comm_step_ms=step_no_comm * 1e3,
            no_comm_bound_speedup=step_std / step_no_comm,
        )
        rows.append(row)
        if not dist.is_initialized() or dist.get_rank() == 0:
            print(json.dumps(row), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    step = sub.add_parser("step", help="one-GPU training step time, ladder vs standard")
    step.add_argument("--model", default="468m")
    step.add_argument("--seq-len", type=int, default=2048)
    step.add_argument("--batch-size", type=int, default=8)
    step.add_argument("--warmup", type=int, default=5)
    step.add_argument("--steps", type=int, default=10)
    step.add_argument("--rounds", type=int, default=5)
    step.add_argument("--no-compile", dest="compile", action="store_false")
    step.add_argument(
        "--inductor-norms",
        dest="fused_norms",
        action="store_false",
        help="both models with Inductor's own add + RMSNorm instead of our fused op (fused_norms off)",
    )
    step.add_argument(
        "--profile", action="store_true", help="also print both steps' kernel times side by side"
    )
    dec = sub.add_parser("decode", help="TP decode tokens/s under torchrun, ladder vs standard")
    dec.add_argument("--model", default="468m")
    dec.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    dec.add_argument("--prompt-len", type=int, default=128)
    dec.add_argument("--new-tokens", type=int, default=128)
    dec.add_argument("--repeats", type=int, default=5)
    dec.add_argument("--eager", dest="cuda_graph", action="store_false", help="no CUDA graph")
    parser.add_argument("--json", help="append the result rows to this JSON-lines file (rank 0)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("ladder_decode.py needs a CUDA GPU (and torchrun with NCCL for TP > 1); nothing to do here.")
        sys.exit(0)
    rows = [step_time(args)] if args.mode == "step" else decode(args)
    if args.mode == "step":
        print(json.dumps(rows[0]), flush=True)
    if args.json and int(os.environ.get("RANK", "0")) == 0:
        with open(args.json, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
