"""Options and output shared by the stage commands."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from redpajama.runners.local import RUNNERS, RunOptions, RunSummary


class OutputMode(StrEnum):
    human = "human"
    json = "json"


WORKERS = typer.Option(0, "--workers", "-w", help="Parallel processes (0: one per CPU).")
OVERWRITE = typer.Option(False, "--overwrite", help="Redo finished shards too.")
PROGRESS = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a TTY).")
FORMAT = typer.Option(OutputMode.human, "--format", help="Summary as human text or JSON.")
RUNNER = typer.Option(
    "local", "--runner", help=f"Engine that runs the tasks: {' | '.join(RUNNERS)}.", show_default=True
)
ADDRESS = typer.Option(
    None, "--address", help="--runner ray: the cluster to join (e.g. ray://head:10001); default: a local one."
)
ENGINE_ARG = typer.Option(
    None,
    "--engine-arg",
    help="--runner beam: a Beam pipeline option, repeatable (e.g. --engine-arg=--runner=DataflowRunner); "
    "default: DirectRunner with --workers processes.",
)


def run_options(
    workers: int,
    progress: bool | None,
    overwrite: bool = False,
    runner: str = "local",
    address: str | None = None,
    engine_args: list[str] | None = None,
) -> RunOptions:
    if runner not in RUNNERS:
        raise typer.BadParameter(
            f"unknown runner {runner!r}; known: {', '.join(RUNNERS)}", param_hint="--runner"
        )
    if workers < 0:
        raise typer.BadParameter(f"{workers}: give 0 (one per CPU) or more", param_hint="--workers")
    return RunOptions(
        workers=workers,
        progress=progress,
        overwrite=overwrite,
        runner=runner,
        address=address,
        engine_args=tuple(engine_args or ()),
    )


def report(
    summary: RunSummary,
    fmt: OutputMode,
    output: Path,
    where: str,
    max_error_rate: float = 1.0,
    extra: dict | None = None,
) -> None:
    """Print the run summary; exit 1 on failed tasks or too many bad records.

    Counts cover every finished shard of the stage, those already done by an earlier run
    included (their recorded stats), so a rerun reports, and exits, as the run that did the work.
    `where` is the caller's output folder; when it is a top-level folder of `output`, the folders
    the shards actually wrote are shown instead (an ingest of RPv2 signals files writes
    quality_signals/, not documents/).
    """
    if fmt is OutputMode.json:  # `extra`: the stage's own summary, under its own keys
        typer.echo(json.dumps({**summary.as_dict(), **(extra or {})}, indent=2))
    else:
        stats = summary.stats
        typer.echo(
            f"{summary.stage}: {summary.tasks_run} shard(s) done, {summary.tasks_skipped} already done, "
            f"{len(summary.failed)} failed; {stats.docs_out:,} rows written, "
            f"{stats.error_count:,} bad records ({summary.error_rate:.2%}) in {summary.seconds:.1f}s"
            + (" (counts include the shards already done)" if summary.tasks_skipped else "")
        )
        shown = [where]
        if summary.output_folders and Path(where).parent == output:
            shown = [str(output / folder) for folder in summary.output_folders]
        typer.echo(f"output: {', '.join(shown)}")
        if stats.error_count:
            typer.echo(f"bad records: {output / '_runs' / summary.stage / 'errors.jsonl'}")
    for key, reason in summary.failed.items():
        typer.secho(f"failed: {key}: {reason}", fg="red", err=True)
    if summary.failed:
        raise typer.Exit(1)
    if summary.error_rate > max_error_rate:
        typer.secho(
            f"error rate {summary.error_rate:.2%} is above --max-error-rate {max_error_rate:.2%}",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
