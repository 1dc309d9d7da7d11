"""`redpajama signals`: documents -> quality_signals (every rps_* signal)."""

from __future__ import annotations

from pathlib import Path

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
    report,
    run_options,
)


def _print_signal_list() -> None:
    from redpajama.quality_signals.registry import SIGNALS

    width = max(len(name) for name in SIGNALS)
    for signal in SIGNALS.values():
        typer.echo(f"{signal.name:<{width}}  {signal.level:<8}  {signal.description}")


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama signals out/ --ut1-map artifacts/ut1.parquet\n\n"
        "Then query it:\n\n"
        "    duckdb -c \"SELECT avg(rps_doc_word_count) FROM 'out/quality_signals/**/*.parquet'\""
    )
)
def signals(
    output: Path | None = typer.Argument(
        None, help="The output folder that holds documents/ (from `ingest`)."
    ),
    names: list[str] | None = typer.Option(None, "--signal", "-s", help="Compute only these (repeatable)."),
    ut1_map: Path | None = typer.Option(
        None,
        "--ut1-map",
        exists=True,
        dir_okay=False,
        help="UT1 domain -> category map (Parquet or RPv2 JSON); without it rps_doc_ut1_blacklist is null.",
    ),
    buckets: list[str] | None = typer.Option(
        None,
        "--bucket",
        help="Only documents files of these buckets, e.g. --bucket head --bucket middle (as RPv2).",
    ),
    artifacts: Path | None = typer.Option(
        None,
        "--artifacts",
        help="Artifact bundle with the fastText classifiers and DSIR counts (default: $REDPAJAMA_ARTIFACTS "
        "or the shipped bundle); signals without a model for a language are null.",
    ),
    rpv2_compat: bool = typer.Option(
        False,
        "--rpv2-compat",
        help="Hash DSIR n-grams as RPv2 (Python hash, PYTHONHASHSEED=42); the bundle's DSIR counts must "
        "be built that way (manifest dsir_hash=rpv2). DSIR counts whose manifest does not record a hash "
        "(RPv2's own files, also after `artifacts fetch` into their folder) are read that way even "
        "without this flag.",
    ),
    list_signals: bool = typer.Option(False, "--list", help="Print every signal: name, level, definition."),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    overwrite: bool = OVERWRITE,
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """Compute RedPajama-V2's quality signals: `OUT/quality_signals/<snapshot>/<shard>/<lang>_<bucket>.parquet`.

    Rows keep the documents' order and are keyed by `id`/`id_int`. Document-level signals are
    columns; line-level signals are lists of (start, end, score) spans into `raw_content`.
    """
    if list_signals:
        _print_signal_list()
        return
    if output is None:
        raise typer.BadParameter("give the output folder, e.g. `redpajama signals out/`", param_hint="OUTPUT")
    from redpajama.pipelines import signals as stage

    config = stage.SignalsConfig(
        names=tuple(names) if names else None,
        ut1_map=str(ut1_map) if ut1_map else None,
        buckets=tuple(buckets) if buckets else None,
        artifacts=str(artifacts) if artifacts else None,
        rpv2_compat=rpv2_compat,
    )
    from redpajama.artifacts.bundle import Bundle
    from redpajama.quality_signals.dsir_features import resolve_hash_mode

    try:  # a bundle hashed differently from what was asked for is a usage error, not a crash
        resolve_hash_mode(Bundle.at(config.artifacts).manifest, rpv2_compat)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rpv2-compat") from exc
    summary = stage.run(
        output, config, run_options(workers, progress, overwrite, runner, address, engine_args)
    )
    report(summary, fmt, output, str(output / stage.COMPONENT))
    unknown = stage.documents_without_language(output, config)
    if unknown and fmt is OutputMode.human:
        typer.secho(
            f"warning: {unknown:,} documents have no language (run `redpajama ccnet {output}` first): "
            "their language-dependent signals (stop words, classifiers, importance) were computed as English",
            fg="yellow",
            err=True,
        )


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama export out/ --format rpv2 -o out/rpv2/\n\n"
        "writes `out/rpv2/documents/<snapshot>/<shard>/<lang>_<bucket>.json.gz` and\n"
        "`out/rpv2/quality_signals/<snapshot>/<shard>/<lang>_<bucket>.signals.json.gz`"
    )
)
def export(
    output: Path = typer.Argument(..., help="The output folder to export from."),
    to: str = typer.Option(
        "rpv2", "--to", "--format", help="Target format (rpv2: RedPajama-V2's json.gz files)."
    ),
    dest: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write (default: OUT/export/rpv2)."
    ),
    workers: int = WORKERS,
    overwrite: bool = OVERWRITE,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    progress: bool | None = PROGRESS,
) -> None:
    """Write the documents and signals in RedPajama-V2's own file formats."""
    if to != "rpv2":
        raise typer.BadParameter(f"unknown export format {to!r}; known: rpv2", param_hint="--format")
    from redpajama.pipelines import export as stage

    summary = stage.run(output, dest, run_options(workers, progress, overwrite, runner, address, engine_args))
    report(summary, OutputMode.human, output, str(dest or output / "export" / "rpv2"))
