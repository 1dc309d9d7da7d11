"""`redpajama ccnet`: CCNet's line dedup, language id, perplexity and buckets, in place."""

from __future__ import annotations

from pathlib import Path

import typer

from redpajama.cli.app import app
from redpajama.cli.common import (
    ADDRESS,
    ENGINE_ARG,
    FORMAT,
    PROGRESS,
    RUNNER,
    WORKERS,
    OutputMode,
    report,
    run_options,
)
from redpajama.pipelines.ccnet import CCNET_MIN_LENGTH


def _languages(value: str) -> tuple[str, ...] | None:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise typer.BadParameter("give languages like en,de or `all`", param_hint="--keep-languages")
    return None if names == ("all",) else names


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama ingest 'crawl/*.warc.gz' -o out/ && redpajama ccnet out/ --keep-languages en,de,fr,es,it\n\n"
        "Then query it:\n\n"
        "    duckdb -c \"SELECT language, bucket, count(*) FROM 'out/documents/**/*.parquet' GROUP BY ALL\""
    )
)
def ccnet(
    output: Path = typer.Argument(..., help="The output folder that holds documents/ (from `ingest`)."),
    artifacts: Path | None = typer.Option(
        None,
        "--artifacts",
        help="Model bundle (lid/, lm/, cutoffs.csv); default: the shipped bundle or $REDPAJAMA_ARTIFACTS.",
    ),
    lang_threshold: float = typer.Option(
        0.5,
        "--lang-threshold",
        help="Drop documents whose top language score (rounded to 0.01) is below this.",
    ),
    hash_group: int = typer.Option(
        50,
        "--hash-group",
        help="Ingested shards (input files: one a WET file) per line-dedup group; a line that two documents "
        "of a group hold is removed from both. CCNet's hash_in_mem counts its own shards, 1/5000 "
        "of a crawl's WET files each for RPv2 (roughly 10-20 files), so its 50 are several hundred WET "
        "files here; memory grows with the group.",
    ),
    min_length: int = typer.Option(
        CCNET_MIN_LENGTH,
        "--min-length",
        help="Drop documents shorter than this many characters before dedup (CCNet's min_len; 0 keeps all).",
    ),
    keep_languages: str = typer.Option(
        "all", "--keep-languages", help="Comma-separated languages to keep (e.g. en,de,fr,es,it), or `all`."
    ),
    per_line: bool = typer.Option(
        False,
        "--per-line-perplexity",
        help="Score each line on its own (CCNet's mine.py scores the normalized document as one line).",
    ),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """Run CCNet over the documents tree: `OUT/documents/<snapshot>/<shard>/<lang>_<bucket>.parquet`.

    Replaces each shard's ingest files with its CCNet output in one atomic step; a shard already
    processed is never processed again, so a rerun only finishes what an interrupted run left.
    """
    from redpajama.pipelines.ccnet import stage

    config = stage.CCNetConfig(
        artifacts=str(artifacts) if artifacts else None,
        lang_threshold=lang_threshold,
        hash_group=hash_group,
        min_length=min_length,
        keep_languages=_languages(keep_languages),
        per_line_perplexity=per_line,
    )
    summary = stage.run(output, config, run_options(workers, progress, False, runner, address, engine_args))
    report(summary, fmt, output, str(output / "documents"))
    if fmt is OutputMode.human:
        drops = stage.drop_totals(output)
        if drops:
            typer.echo("dropped: " + ", ".join(f"{k} {v:,}" for k, v in drops.items()))
