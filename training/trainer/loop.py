"""The training loop: one function from a TrainConfig to a trained checkpoint and its metrics.

Nothing runs at import. The loop is deliberately plain (no callbacks, no hooks): accumulate
`grad_accum` micro-batches, clip, step, log; checkpoints carry everything needed to resume the run
bit for bit (same batches, same optimizer state), which tests/training check.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from redpajama.io.atomic import write_json
from redpajama.training.loader import SequenceLoader
from redpajama.training.model import Transformer, model_config
from redpajama.training.model.flops import mfu, training_flops_per_token
from redpajama.training.token_shards import TokenShards
from redpajama.training.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from redpajama.training.trainer.config import TrainConfig
from redpajama.training.trainer.distributed import (
    World,
    close_world,
    init_world,
    mean_across_ranks,
    shard_model,
)
from redpajama.training.trainer.evaluate import held_out_loss
from redpajama.training.trainer.metrics import MetricsLog
from redpajama.training.trainer.optimizer import build_optimizer
from redpajama.training.trainer.schedule import learning_rate
from redpajama.training.trainer.step import train_step


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    held_out_loss: float | None
    tokens: int
    tokens_per_second: float  # median over logged intervals after the first (compile, warm-up)
    mfu: float
    checkpoint: Path | None


def build_model(config: TrainConfig, vocab_size: int) -> Transformer:
    padded_vocab = 128 * -(-vocab_size // 128)
    model_cfg = model_config(config.model, **config.model_overrides)
    # The head follows the data's tokenizer (GPT-2's 50257 -> 50304), padded for the matmul tiles.
    model_cfg = model_cfg.replace(
        vocab_size=padded_vocab, max_seq_len=max(model_cfg.max_seq_len, config.seq_len)
    )
    if model_cfg.residual == "ladder":
        from redpajama.training.model.ladder import LadderTransformer

        return LadderTransformer(model_cfg)
    return Transformer(model_cfg)


def _use_bf16(config: TrainConfig, world: World) -> bool:
    if config.precision == "auto":
        return world.device.type == "cuda"
    return config.precision == "bf16"


def train(
    config: TrainConfig, *, resume: bool = True, device: str | None = None, stop_after: int | None = None
) -> TrainResult:
    """Train to `config`'s budget, resuming from the latest checkpoint in `config.out` if `resume`.

    `stop_after` ends the run after that many steps of the schedule (with a checkpoint), as a job
    with a time limit does; a later call resumes it.
    """
    world = init_world(device)
    try:
        result = _train(config, world, resume, stop_after)
        if world.distributed:
            # Every rank finishes before any tears its connections down: a gloo rank whose peer had
            # already destroyed the group aborted at exit ("terminate called without an active
            # exception") once in a full test run. Not in `finally`: after an error a peer may
            # never arrive.
            torch.distributed.barrier()
        return result
    finally:
        close_world(world)


def _train(config: TrainConfig, world: World, resume: bool, stop_after: int | None) -> TrainResult:
    shards = TokenShards.open(config.data, split="train")
    torch.manual_seed(config.seed)
    # Built on the CPU from the seed, so every world size starts from the same weights.
    model = build_model(config, shards.vocab_size)
    flops_per_token = training_flops_per_token(model, config.seq_len)
    model.to(world.device)
    bf16 = _use_bf16(config, world)
    if world.distributed:
        shard_model(model, world, bf16, config.fsdp_reshard_after_forward)
    if config.compile and world.distributed:
        model.compile_blocks()
    elif config.compile:
        # One graph for the whole model lets inductor fuse across blocks and into the loss:
        # 6% more tokens/s than per-block graphs for the 468m model on an H200.
        model.compile()
    optimizer = build_optimizer(model, config)
    loader = SequenceLoader(
        shards, config.seq_len, config.batch_size, config.seed, rank=world.rank, world_size=world.world_size
    )
    checkpoints = config.out / "checkpoints"
    start = 0
    previous = latest_checkpoint(checkpoints) if resume else None
    if previous is not None:
        payload = load_checkpoint(previous, model, optimizer, world)
        loader.load_state_dict(payload["loader"])
        start = payload["step"]
    if world.is_main:
        write_json(config.out / "train_config.json", config.to_json())
    log = MetricsLog(
        config.out / "metrics.jsonl", resume_step=start if previous else None, enabled=world.is_main
    )
    autocast = (
        torch.autocast(world.device.type, dtype=torch.bfloat16)
        if bf16 and not world.distributed
        else contextlib.nullcontext()
    )
    total = config.total_steps(world.world_size)
    tokens_per_step = config.tokens_per_step(world.world_size)
    rates: list[float] = []
    loss_value = float("nan")
    last_saved: Path | None = previous
    tick, tick_step = time.perf_counter(), start
    end = total if stop_after is None else min(total, stop_after)
    summary_file = config.out / "train_summary.json"
    if start >= end and summary_file.exists():  # a finished run: report it, do not overwrite it
        return _result_from(json.loads(summary_file.read_text("utf-8")))
    first_rate = float("nan")
    for step in range(start, end):
        lr = learning_rate(step, total, config.lr, config.warmup_fraction, config.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = [
            tuple(t.to(world.device, non_blocking=True) for t in next(loader))
            for _ in range(config.grad_accum)
        ]
        step_loss, grad_norm = train_step(model, optimizer, batches, autocast, config.grad_clip)
        done = step + 1
        if done % config.log_every == 0 or done == end:
            loss_value = mean_across_ranks(step_loss, world).item()
            if world.device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            rate = (done - tick_step) * tokens_per_step / (now - tick)
            if tick_step > start:  # the first interval holds compilation and allocator warm-up
                rates.append(rate)
            else:
                first_rate = rate
            tick, tick_step = now, done
            norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            log.write(
                {
                    "step": done,
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": float(norm),
                    "tokens": done * tokens_per_step,
                    "tokens_per_s": rate,
                    "mfu": mfu(rate / world.world_size, flops_per_token),  # per device
                }
            )
        if config.eval_every and done % config.eval_every == 0 and done != total:
            log.write({"step": done, "held_out_loss": held_out_loss(model, config, world, autocast)})
        if (config.checkpoint_every and done % config.checkpoint_every == 0) or done == end:
            last_saved = save_checkpoint(checkpoints, done, model, optimizer, loader.state_dict(), world)
    held = held_out_loss(model, config, world, autocast) if end == total and total > start else None
    if held is not None:
        log.write({"step": total, "held_out_loss": held})
    log.close()
    rates = sorted(rates)
    # A run of one logging interval has only the warm-up interval's rate: reported, and said so.
    rate = rates[len(rates) // 2] if rates else first_rate
    result = TrainResult(
        steps=end,
        final_loss=loss_value,
        held_out_loss=held,
        tokens=end * tokens_per_step,
        tokens_per_second=rate,
        mfu=mfu(rate / world.world_size, flops_per_token),
        checkpoint=last_saved,
    )
    if world.is_main:
        summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items()}
        summary["rate_includes_warmup"] = not rates
        summary["flops_per_token"] = flops_per_token
        summary["flops_convention"] = "6 x non-embedding parameters (head included) + causal attention"
        # JSON has no NaN: a value never measured is null.
        summary = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()
        }
        write_json(summary_file, summary)
    return result


def _result_from(summary: dict) -> TrainResult:
    def number(key: str) -> float:
        return float("nan") if summary.get(key) is None else float(summary[key])

    return TrainResult(
        steps=int(summary["steps"]),
        final_loss=number("final_loss"),
        held_out_loss=summary.get("held_out_loss"),
        tokens=int(summary["tokens"]),
        tokens_per_second=number("tokens_per_second"),
        mfu=number("mfu"),
        checkpoint=Path(summary["checkpoint"]) if summary.get("checkpoint") else None,
    )
