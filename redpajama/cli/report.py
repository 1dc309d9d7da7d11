"""`redpajama report`: one self-contained HTML page about an output tree."""

from __future__ import annotations

from pathlib import Path

import typer

from redpajama.cli.app import app


@app.command(
    epilog=(
        "Examples:\n\n"
        "    redpajama report out/ -o report/\n\n"
        "    redpajama report out/ --rules gopher,c4 --sample 3"
    )
)
def report(
    output: Path = typer.Argument(
        ..., help="The output folder (documents/, quality_signals/, clusters/, ...)."
    ),
    dest: Path = typer.Option(Path("report"), "--output", "-o", help="Folder for index.html."),
    rules: str = typer.Option("gopher", "--rules", help="Comma-separated rule sets for the funnel."),
    sample: int = typer.Option(5, "--sample", help="Documents kept and dropped shown per rule (0: none)."),
    chars: int = typer.Option(400, "--chars", help="Characters shown of each sampled document."),
    bins: int = typer.Option(30, "--bins", help="Histogram bins."),
    memory_gb: float = typer.Option(2.0, "--memory-gb", help="DuckDB memory limit (it spills beyond it)."),
) -> None:
    """Write `<-o>/index.html`: counts by snapshot/language/bucket, histograms of every quality signal,
    the survival funnel of a rule set, dedup cluster sizes and sample documents kept and dropped per rule.

    The file is self-contained (inline SVG and CSS, no script, no network): open it anywhere.
    """
    from redpajama.report import ReportConfig, build_report

    names = tuple(r.strip() for r in rules.split(",") if r.strip())
    if bins < 1:
        raise typer.BadParameter("--bins must be at least 1")
    config = ReportConfig(rules=names, sample=sample, chars=chars, bins=bins, memory_gb=memory_gb)
    try:
        path = build_report(output, dest, config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"report: {path}")
