"""`redpajama train`: one ablation model on a token folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from redpajama.cli.app import app
from redpajama.cli.common import FORMAT, OutputMode
from redpajama.cli.training_options import (
    ATTENTION,
    BATCH_SIZE,
    COMPILE,
    DEVICE,
    GRAD_ACCUM,
    KV_HEADS,
    LADDER,
    LR,
    MODEL,
    PRECISION,
    SEED,
    SEQ_LEN,
    compile_default,
    model_overrides,
    require_torch,
)


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama tokenize curated/ -o tokens/\n\n"
        "    redpajama train --data tokens/ --model tiny -o runs/tiny --steps 200\n\n"
        "    torchrun --nproc_per_node 8 -m redpajama train --data tokens/ --model 468m -o runs/468m "
        "--tokens 2000000000 --seq-len 2048 --batch-size 16"
    )
)
def train(
    data: Path = typer.Option(..., "--data", help="A `redpajama tokenize` output folder."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Run folder: checkpoints, metrics.jsonl, summary."
    ),
    model: str = MODEL,
    attention: str | None = ATTENTION,
    kv_heads: int | None = KV_HEADS,
    ladder: bool = LADDER,
    seq_len: int = SEQ_LEN,
    batch_size: int = BATCH_SIZE,
    grad_accum: int = GRAD_ACCUM,
    steps: int = typer.Option(100, "--steps", help="Optimizer steps (ignored when --tokens is given)."),
    tokens: int | None = typer.Option(None, "--tokens", help="Token budget; sets the number of steps."),
    lr: float = LR,
    seed: int = SEED,
    compile_model: bool | None = COMPILE,
    precision: str = PRECISION,
    checkpoint_every: int = typer.Option(
        0, "--checkpoint-every", help="Steps between checkpoints (0: at the end)."
    ),
    log_every: int = typer.Option(10, "--log-every", help="Steps between metrics.jsonl records."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore checkpoints in OUTPUT and start over."),
    fsdp_reshard: bool = typer.Option(
        True,
        "--fsdp-reshard/--fsdp-keep-params",
        help="Under torchrun: free gathered block parameters after the forward (less memory) or "
        "keep them for the backward (one all-gather fewer per block).",
    ),
    device: str | None = DEVICE,
    fmt: OutputMode = FORMAT,
) -> None:
    """Train a Llama-style model on packed tokens; resumes from OUTPUT's latest checkpoint.

    Under `torchrun` every process trains one shard of the model (FSDP2) on its slice of each batch.
    Throughput and MFU (6 x non-embedding parameters + attention, against 989 TFLOP/s) go to
    OUTPUT/metrics.jsonl and OUTPUT/train_summary.json.
    """
    require_torch()
    from redpajama.training.trainer.config import TrainConfig
    from redpajama.training.trainer.loop import train as run_training

    config = TrainConfig(
        data=data,
        out=output,
        model=model,
        model_overrides=model_overrides(attention, kv_heads, ladder),
        seq_len=seq_len,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_steps=steps,
        max_tokens=tokens,
        lr=lr,
        seed=seed,
        compile=compile_default(compile_model, device),
        precision=precision,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
        fsdp_reshard_after_forward=fsdp_reshard,
    )
    _warn_lost(data)
    result = run_training(config, resume=not fresh, device=device)
    summary = (
        json.loads((output / "train_summary.json").read_text())
        if (output / "train_summary.json").exists()
        else {}
    )
    if fmt is OutputMode.json:
        typer.echo(json.dumps(summary or result.__dict__, indent=2, default=str))
        return
    held = f", held-out loss {result.held_out_loss:.4f}" if result.held_out_loss is not None else ""
    typer.echo(
        f"train: {result.steps} steps, {result.tokens:,} tokens, final loss {result.final_loss:.4f}{held}; "
        f"{result.tokens_per_second:,.0f} tokens/s, MFU {result.mfu:.1%}"
    )
    typer.echo(f"output: {output}")


def _warn_lost(data: Path) -> None:
    """Say (rank 0) when the tokens miss parts of their curated folder that tokenize could not read."""
    from redpajama.errors import UserError
    from redpajama.training.token_shards import read_index

    try:
        lost = read_index(data).get("lost", [])
    except UserError:
        return  # the trainer reports a missing or unreadable index itself
    if lost and os.environ.get("RANK", "0") == "0":
        typer.secho(
            f"warning: {data} was tokenized without {len(lost)} unreadable part(s) of its documents "
            "(index.json `lost`); training on what was read",
            fg="yellow",
            err=True,
        )
