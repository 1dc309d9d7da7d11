"""`redpajama filter`: named SQL rules (+ dedup) over an output tree -> a curated tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from redpajama.cli.app import app
from redpajama.cli.common import (
    ADDRESS,
    ENGINE_ARG,
    FORMAT,
    OVERWRITE,
    PROGRESS,
    RUNNER,
    WORKERS,
    OutputMode,
    run_options,
)


def _print_rule_sets() -> None:
    from redpajama.pipelines.rules import shipped

    for name, rules in shipped().items():
        typer.echo(f"{name}:")
        for rule in rules:
            typer.echo(f"  {rule.name:<26} {rule.level:<8} {rule.sql}   [{rule.citation}]")


def _print_stats(stats: dict[str, Any]) -> None:
    funnel = stats["funnel"]
    typer.echo(f"{'step':<32} {'dropped':>9} {'left':>9}")
    typer.echo(f"{'input':<32} {'':>9} {funnel[0]['docs']:>9,}")
    for step in funnel[1:]:
        typer.echo(f"{step['step']:<32} {step['dropped']:>9,} {step['docs']:>9,}")
    if stats.get("lines"):
        lines = stats["lines"]
        typer.echo(f"lines: {lines['kept']:,} of {lines['in']:,} kept; failing per rule: {lines['failed']}")


@app.command(
    name="filter",
    epilog=(
        "Examples:\n\n"
        "    redpajama filter out/ --rules gopher,c4 --dedup fuzzy-0.8 -o curated/\n\n"
        '    redpajama filter out/ --rules c4-lines --rule "long=rps_doc_word_count > 200" -o curated/\n\n'
        "    redpajama filter --list          # shipped rule sets with their thresholds and citations"
    ),
)
def filter_(
    output: Path | None = typer.Argument(
        None, help="The output tree to filter (documents/, quality_signals/)."
    ),
    rules: str = typer.Option(
        "",
        "--rules",
        help="Comma-separated rule sets (gopher, gopher-natlang, gopher-rep, c4, c4-lines, rpv1, fineweb) "
        "or YAML files of your own, applied in order.",
    ),
    inline: list[str] | None = typer.Option(
        None,
        "--rule",
        help='An extra rule "name=SQL" a kept document satisfies (line rules: "line:name=SQL").',
    ),
    dedup_modes: list[str] | None = typer.Option(
        None,
        "--dedup",
        help="Drop the duplicates listed under `OUT/duplicates/<mode>`: exact, fuzzy-0.8, ... Give exact "
        "and one fuzzy mode together to combine them: fuzzy decides inside its clusters, exact elsewhere, "
        "so one copy of every group survives.",
    ),
    keep_dropped: bool = typer.Option(
        False,
        "--keep-dropped",
        help="Also write the dropped documents to CURATED/dropped/ with the failing rule.",
    ),
    dest: Path | None = typer.Option(None, "--output", "-o", help="The curated tree to write."),
    list_sets: bool = typer.Option(False, "--list", help="Print the shipped rule sets and exit."),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    overwrite: bool = OVERWRITE,
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """Keep the documents that pass every rule and are not duplicates: `CURATED/documents/...`.

    Kept rows keep their columns and gain `passed_rules` and `first_failed_rule` (provenance).
    Line rules (c4-lines) rewrite `raw_content` from the kept lines. Per-rule counts and the
    survival funnel go to `CURATED/_runs/filter/stats.json`.
    """
    if list_sets:
        _print_rule_sets()
        return
    if output is None or dest is None:
        raise typer.BadParameter(
            "give the tree and the curated folder, e.g. `redpajama filter out/ --rules gopher -o curated/`"
        )
    from redpajama.pipelines import filter as stage
    from redpajama.pipelines.rules import resolve

    chosen = resolve(rules.split(","), inline or [])
    dedup = tuple(dedup_modes or ())
    if not chosen and not dedup:
        raise typer.BadParameter("nothing to do: give --rules, --rule or --dedup", param_hint="--rules")
    config = stage.FilterConfig(
        source=str(output), rules=tuple(chosen), dedup=dedup, keep_dropped=keep_dropped
    )
    summary, stats = stage.run(
        dest, config, run_options(workers, progress, overwrite, runner, address, engine_args)
    )
    if fmt is OutputMode.json:
        typer.echo(json.dumps(stats, indent=2))
    else:
        _print_stats(stats)
        for warning in stats.get("warnings", []):
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
        typer.echo(
            f"filter: kept {stats['docs_kept']:,} of {stats['funnel'][0]['docs']:,} documents; "
            f"{summary.tasks_run} file(s) done, {summary.tasks_skipped} already done, {len(summary.failed)} failed"
        )
        typer.echo(f"output: {dest / 'documents'}  stats: {dest / '_runs' / 'filter' / 'stats.json'}")
    for key, reason in summary.failed.items():
        typer.secho(f"failed: {key}: {reason}", fg="red", err=True)
    if summary.failed:
        raise typer.Exit(1)
