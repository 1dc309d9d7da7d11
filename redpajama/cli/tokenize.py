"""`redpajama tokenize`: a curated folder -> packed token shards for `redpajama train`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from redpajama.cli.app import app
from redpajama.cli.common import FORMAT, PROGRESS, OutputMode

if TYPE_CHECKING:
    from redpajama.training.tokenize import TokenizeSummary


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]tokenize[/]  {task.fields[docs]:,} docs  {task.fields[tokens]:,} tokens"),
        TimeElapsedColumn(),
        transient=True,
    )
    progress.add_task("tokenize", total=None, docs=0, tokens=0)
    return progress


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama tokenize curated/ -o tokens/ --tokenizer gpt2 --seed 0\n\n"
        "Then point the trainer at tokens/ (TrainConfig.data)."
    )
)
def tokenize(
    curated: Path = typer.Argument(
        ...,
        help="Curated folder: a tree of Parquet files with `id` and text (our documents/ or filter output).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the token shards and index.json."),
    tokenizer: str = typer.Option(
        "gpt2", "--tokenizer", help="`gpt2` (bundled GPT-2 BPE) or the path of a Hugging Face tokenizer.json."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the document shuffle."),
    held_out_fraction: float = typer.Option(
        0.005, "--held-out-fraction", help="Share of documents (by a hash of `id`) kept out for evaluation."
    ),
    shard_tokens: int = typer.Option(2**28, "--shard-tokens", help="Tokens per shard file."),
    text_field: str | None = typer.Option(
        None, "--text-field", help="Column holding the text (default: raw_content, then text)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo it even if OUTPUT is complete."),
    max_error_rate: float = typer.Option(
        0.05,
        "--max-error-rate",
        help="Fail (exit 1) when rows lost to damaged files exceed this share; a file that will not open always fails.",
    ),
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """Tokenize a curated folder into shuffled, packed token shards: `OUTPUT/{train,held_out}-NNNNN.bin`.

    Each document is followed by EOS; documents are shuffled with `--seed` and split into train and
    held_out by a stable hash of their `id`. A rerun with the same settings is a no-op; a killed run
    is redone from the start by rerunning the same command.
    """
    from redpajama.training.tokenize import TokenizeConfig, run

    config = TokenizeConfig(
        tokenizer=tokenizer,
        seed=seed,
        held_out_fraction=held_out_fraction,
        shard_tokens=shard_tokens,
        text_field=text_field,
    )
    bar = _progress_bar(progress if progress is not None else sys.stderr.isatty())

    def on_progress(docs: int, tokens: int) -> None:
        bar.update(bar.task_ids[0], docs=docs, tokens=tokens)

    with bar if bar is not None else contextlib.nullcontext():
        summary = run(curated, output, config, overwrite=overwrite, progress=on_progress if bar else None)
    if fmt is OutputMode.json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(summary, output)
    for entry in summary.lost[:LOST_SHOWN]:
        typer.secho(f"lost: {entry.describe()}", fg="red", err=True)
    if len(summary.lost) > LOST_SHOWN:
        typer.secho(
            f"lost: {len(summary.lost) - LOST_SHOWN} more (index.json lists them)", fg="red", err=True
        )
    verdict = summary.verdict(max_error_rate)
    if verdict:
        typer.secho(f"tokenize failed: {verdict}", fg="red", err=True)
        raise typer.Exit(1)


LOST_SHOWN = 20


def _print_summary(summary: TokenizeSummary, output: Path) -> None:
    if summary.skipped:
        typer.echo(
            f"tokenize: {output} is already complete for these settings; nothing to do (--overwrite redoes it)"
        )
    else:
        typer.echo(
            f"tokenize: {summary.documents:,} documents, {summary.tokens:,} tokens in {summary.seconds:.1f}s "
            f"({summary.tokens_per_second:,.0f} tokens/s, {summary.documents / summary.seconds:,.0f} docs/s)"
        )
    for name, split in summary.splits.items():
        typer.echo(
            f"  {name:<9} {split.documents:>12,} docs {split.tokens:>15,} tokens {split.shards:>5} shard(s)"
        )
    typer.echo(f"output: {output}")
