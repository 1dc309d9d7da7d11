"""`redpajama minhash`: documents -> minhash (banded MinHash signatures per similarity threshold)."""

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


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama minhash out/                       # RPv2's four columns, bit-exact\n\n"
        "    redpajama minhash out/ --threshold 0.8 --hash fast\n\n"
        "Then look at the bands:\n\n"
        '    duckdb -c "SELECT id, len(\\"signature_sim0.8\\") FROM \'out/minhash/**/*.parquet\' LIMIT 5"'
    )
)
def minhash(
    output: Path = typer.Argument(..., help="The output folder that holds documents/ (from `ingest`)."),
    thresholds: list[float] | None = typer.Option(
        None,
        "--threshold",
        "-t",
        help="Jaccard threshold; bands x rows from datasketch's optimal_param (repeatable; "
        "default 1.0 0.9 0.8 0.7 as RPv2).",
    ),
    num_perm: int = typer.Option(128, "--num-perm", help="Permutations per signature."),
    ngram: int = typer.Option(13, "--ngram", help="Shingle size, in words (or characters)."),
    shingle: str = typer.Option("word", "--shingle", help="word: n-grams of normalized words (RPv2); char."),
    bands: int | None = typer.Option(
        None, "--bands", help="With --rows: one extra column signature_b{B}_r{R}."
    ),
    rows: int | None = typer.Option(None, "--rows", help="Rows per band, with --bands."),
    hash_name: str = typer.Option(
        "sha1",
        "--hash",
        help="sha1: RPv2's SHA-1 + legacy permutations (bit-exact); fast: vectorised hash, several "
        "times faster, NOT comparable with RPv2's signatures.",
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the permutations (RPv2: 42)."),
    buckets: list[str] | None = typer.Option(
        None, "--bucket", help="Only documents files of these buckets, e.g. --bucket head --bucket middle."
    ),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    overwrite: bool = OVERWRITE,
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """MinHash signatures: `OUT/minhash/<snapshot>/<shard>/<lang>_<bucket>.parquet`.

    Rows keep the documents' order: shard_id, id, id_int, then one `list<binary>` column of bands
    per threshold (null below --ngram words). Parameters are in the file's metadata for `dedup`.
    """
    if (bands is None) != (rows is None):
        raise typer.BadParameter("give --bands and --rows together", param_hint="--bands/--rows")
    from redpajama.pipelines import minhash as stage

    explicit = ((bands, rows),) if bands is not None and rows is not None else ()
    if thresholds:
        chosen = tuple(thresholds)
    else:
        chosen = () if explicit else stage.RPV2_THRESHOLDS
    config = stage.MinHashConfig(
        thresholds=chosen,
        bands_rows=explicit,
        num_perm=num_perm,
        ngram=ngram,
        shingle=shingle,  # type: ignore[arg-type]  # checked by validate()
        hash=hash_name,  # type: ignore[arg-type]
        seed=seed,
        buckets=tuple(buckets) if buckets else None,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    summary = stage.run(
        output, config, run_options(workers, progress, overwrite, runner, address, engine_args)
    )
    report(summary, fmt, output, str(output / stage.COMPONENT))
