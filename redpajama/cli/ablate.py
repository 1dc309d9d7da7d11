"""`redpajama ablate`: the paper's method for choosing filters, one model per curated subset."""

from __future__ import annotations

import json
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
        "    redpajama ablate --subsets abl/subsets/raw abl/subsets/dedup abl/subsets/gopher-dedup --tokens 20000000 "
        "--model 20m -o abl/results\n\n"
        "The first subset's held-out split is the reference every model's perplexity is measured on."
    )
)
def ablate(
    subsets: list[Path] = typer.Option(
        ..., "--subsets", help="Curated folders (or token folders), one model each: --subsets A B C."
    ),
    more_subsets: list[Path] | None = typer.Argument(
        None,
        help="The rest of the --subsets list (click gives an option one value; these follow it).",
        show_default=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for tokens/, runs/ and comparison.*"),
    tokens: int = typer.Option(..., "--tokens", help="Training tokens per subset (the identical budget)."),
    model: str = MODEL,
    attention: str | None = ATTENTION,
    kv_heads: int | None = KV_HEADS,
    ladder: bool = LADDER,
    seq_len: int = SEQ_LEN,
    batch_size: int = BATCH_SIZE,
    grad_accum: int = GRAD_ACCUM,
    lr: float = LR,
    seed: int = SEED,
    compile_model: bool | None = COMPILE,
    precision: str = PRECISION,
    tokenizer: str = typer.Option("gpt2", "--tokenizer", help="Tokenizer for subsets not yet tokenized."),
    held_out_fraction: float = typer.Option(
        0.02,
        "--held-out-fraction",
        help="Share of documents (by id hash) kept out of every subset's training.",
    ),
    tasks: str = typer.Option("wikitext2,blimp,piqa", "--tasks", help="Evaluation tasks, comma-separated."),
    blimp_limit: int | None = typer.Option(None, "--blimp-limit", help="First N pairs per BLiMP paradigm."),
    piqa_limit: int | None = typer.Option(None, "--piqa-limit", help="First N PIQA questions."),
    wikitext_limit: int | None = typer.Option(None, "--wikitext-limit", help="First N WikiText-2 articles."),
    device: str | None = DEVICE,
    fmt: OutputMode = FORMAT,
) -> None:
    """Train one model per subset with the same budget, seed and shape; compare them in one table.

    Writes OUTPUT/comparison.md (per-task scores, Avg, Norm.Avg, perplexities, as the paper's
    Table 5), comparison.json and comparison.png. Finished runs are reused on a rerun.
    """
    require_torch()
    from redpajama.training.ablate import AblationConfig, run_ablation
    from redpajama.training.evaluation.suite import Limits

    config = AblationConfig(
        subsets=(*subsets, *(more_subsets or ())),
        out=output,
        tokens=tokens,
        model=model,
        model_overrides=model_overrides(attention, kv_heads, ladder),
        seq_len=seq_len,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        seed=seed,
        compile=compile_default(compile_model, device),
        precision=precision,
        tokenizer=tokenizer,
        held_out_fraction=held_out_fraction,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        limits=Limits(wikitext_documents=wikitext_limit, blimp_per_paradigm=blimp_limit, piqa=piqa_limit),
    )
    rows = run_ablation(config, device=device)
    if fmt is OutputMode.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo((output / "comparison.md").read_text(), nl=False)
    typer.echo(f"output: {output}/comparison.{{md,json,png}}")
