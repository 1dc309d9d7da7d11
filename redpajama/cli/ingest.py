"""`redpajama ingest`: raw inputs -> the documents tree."""

from __future__ import annotations

from pathlib import Path

import typer

from redpajama.cli.app import app
from redpajama.cli.common import ADDRESS, ENGINE_ARG, RUNNER, WORKERS, OutputMode, report, run_options
from redpajama.io.readers import READERS
from redpajama.io.readers.base import ReadOptions
from redpajama.pipelines import ingest as ingest_stage


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama ingest 'crawl/*.warc.gz' data/2023-14/0000/en_head.json.gz -o out/\n\n"
        "Then query it:\n\n"
        "    duckdb -c \"SELECT url, length FROM 'out/documents/**/*.parquet' LIMIT 5\""
    )
)
def ingest(
    inputs: list[str] = typer.Argument(
        ...,
        help="Files, folders (searched recursively) or globs: WARC, WET, RPv2/CCNet json.gz, JSONL, Parquet, text, HF dataset folders.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output folder (the RPv2 tree is written under it)."
    ),
    input_format: str | None = typer.Option(
        None,
        "--input-format",
        help=f"Format of every input instead of detecting it: {', '.join(sorted(READERS))}.",
    ),
    text_field: str | None = typer.Option(
        None, "--text-field", help="JSONL/Parquet column holding the text (default: raw_content, then text)."
    ),
    snapshot: str | None = typer.Option(
        None, "--snapshot", help="Snapshot id (e.g. 2023-14) for inputs that do not name one."
    ),
    extract_timeout: float = typer.Option(
        5.0, "--extract-timeout", help="Seconds allowed per HTML document."
    ),
    main_content: bool = typer.Option(
        True, "--main-content/--all-content", help="Keep only the main content of HTML pages."
    ),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    max_error_rate: float = typer.Option(
        0.05, "--max-error-rate", help="Fail (exit 1) when bad records / records read exceeds this."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo finished shards too."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: on a TTY)."
    ),
    fmt: OutputMode = typer.Option(OutputMode.human, "--format", help="Summary as human text or JSON."),
) -> None:
    """Read raw inputs into the document store: `OUT/documents/<snapshot>/<shard>/<lang>_<bucket>.parquet`.

    Resumable: a rerun skips finished shards and redoes interrupted ones. Bad records are skipped,
    counted and logged with file and offset in `OUT/_runs/ingest/errors.jsonl`.
    """
    if input_format is not None and input_format not in READERS:
        raise typer.BadParameter(
            f"unknown format {input_format!r}; known: {', '.join(sorted(READERS))}",
            param_hint="--input-format",
        )
    config = ingest_stage.IngestConfig(
        read=ReadOptions(
            text_field=text_field,
            extract_timeout=extract_timeout,
            main_content=main_content,
            snapshot=snapshot,
        ),
        input_format=input_format,
        snapshot=snapshot,
    )
    summary = ingest_stage.run(
        inputs, output, config, run_options(workers, progress, overwrite, runner, address, engine_args)
    )
    report(summary, fmt, output, str(output / "documents"), max_error_rate)
