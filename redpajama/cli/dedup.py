"""`redpajama dedup`: fuzzy (MinHash LSH) or, with --exact, exact (Bloom filter) deduplication."""

from __future__ import annotations

import json
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
    OutputMode,
    report,
    run_options,
)


@app.command(
    epilog=(
        "Examples:\n\n"
        "    redpajama dedup out/ --threshold 0.8 --keep newest\n\n"
        "    redpajama dedup out/ --exact\n\n"
        "Then drop the listed documents with an anti-join on id:\n\n"
        "    duckdb -c \"SELECT count(*) FROM 'out/documents/**/*.parquet' d ANTI JOIN "
        "'out/duplicates/fuzzy-0.8/**/*.parquet' x USING (id)\""
    )
)
def dedup(
    output: Path = typer.Argument(
        ..., help="The output folder that holds minhash/ (fuzzy) or documents/ (--exact)."
    ),
    threshold: float = typer.Option(
        0.8,
        "--threshold",
        "-t",
        help="Jaccard threshold: the minhash stage's `signature_sim<t>` column to band (RPv2: 0.7, 0.8, 0.9, 1.0).",
    ),
    keep: str = typer.Option(
        "min-id",
        "--keep",
        help="Which cluster member survives: min-id (RPv2), newest (latest date_download) or "
        "highest:SIGNAL (largest document-level quality signal); ties by smallest id_int.",
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", help="Disk partitions of the band keys (default: from --memory-gb)."
    ),
    memory_gb: float = typer.Option(4.0, "--memory-gb", help="Memory budget that sizes the partitions."),
    exact: bool = typer.Option(False, "--exact", help="Exact dedup of documents/ by a Bloom filter instead."),
    capacity: int | None = typer.Option(
        None, "--capacity", help="--exact: Bloom filter capacity (default: the number of documents)."
    ),
    error_rate: float = typer.Option(0.01, "--error-rate", help="--exact: false-positive rate at capacity."),
    key: str = typer.Option(
        "digest", "--key", help="--exact: digest (the WET digest, RPv2) or text (raw_content)."
    ),
    buckets: list[str] | None = typer.Option(
        None,
        "--bucket",
        help="--exact: only documents files of these buckets. Default: head and middle where the tree has CCNet's buckets (RPv2 reads no tail), else every file.",
    ),
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    overwrite: bool = OVERWRITE,
    progress: bool | None = PROGRESS,
    fmt: OutputMode = FORMAT,
) -> None:
    """Find duplicates and write the ones to drop to `OUT/duplicates/{fuzzy-<t>,exact}/<snapshot>/<shard>/<lang>_<bucket>.parquet`.

    Fuzzy (default): LSH over `OUT/minhash` signatures, connected components, one kept document per
    cluster; also `OUT/clusters/fuzzy-<t>/...` (id, id_int, cluster_id = min id_int of the cluster, shard_id;
    members of clusters of size >= 2, as RPv2's run_lsh). Exact: newest snapshot first, the first
    copy of each digest is kept. Totals and the cluster-size histogram: `OUT/_runs/dedup/summary.json`.
    """
    from redpajama.pipelines.dedup import config as cfg

    options = run_options(1, progress, overwrite, runner, address, engine_args)
    try:
        if exact:
            config: cfg.ExactConfig | cfg.FuzzyConfig = cfg.ExactConfig(
                capacity=capacity, error_rate=error_rate, key=key, buckets=tuple(buckets) if buckets else None
            )
        else:
            config = cfg.FuzzyConfig(
                threshold=threshold, keep=keep, partitions=partitions, memory_gb=memory_gb
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if isinstance(config, cfg.ExactConfig):
        from redpajama.pipelines.dedup import exact as stage

        docs = stage.count_documents(output, config)
        if config.capacity is not None and docs > config.capacity:
            typer.secho(
                f"warning: {docs:,} documents but --capacity {config.capacity:,}: the false-positive rate "
                f"can exceed {config.error_rate} if most are distinct",
                fg="yellow",
                err=True,
            )
        unread = stage.unread_documents(output, config)
        if unread and fmt is OutputMode.human:
            typer.secho(
                f"exact: not reading {sum(unread.values()):,} documents of buckets {', '.join(unread)}"
                + (" (RPv2 deduplicates head and middle only)" if config.buckets is None else "")
                + "; --bucket chooses",
                fg="yellow",
                err=True,
            )
        summary = stage.run(output, config, options)
        where = output / "duplicates" / "exact"
    else:
        from redpajama.pipelines.dedup import stage

        summary = stage.run(output, config, options)
        where = output / "duplicates" / config.name
    totals = _summary(output, config.name)
    report(summary, fmt, output, str(where), extra={"dedup": totals})
    if totals and fmt is OutputMode.human:
        typer.echo(
            f"{config.name}: {totals['docs']:,} documents, {totals['duplicates']:,} duplicates to drop"
            + (f" in {totals['clusters']:,} clusters" if "clusters" in totals else "")
            + f"; summary: {output / '_runs' / 'dedup' / 'summary.json'}"
        )
    if totals.get("over_capacity"):
        typer.secho(
            f"warning: {totals['distinct_keys']:,} distinct keys exceed the capacity {totals['capacity']:,}; "
            f"expected false-positive rate {totals['expected_error_rate_at_end']:.4f}; rerun with a larger --capacity",
            fg="yellow",
            err=True,
        )


def _summary(output: Path, mode: str) -> dict:
    try:
        return json.loads((output / "_runs" / "dedup" / "summary.json").read_text("utf-8")).get(mode, {})
    except (FileNotFoundError, ValueError):
        return {}
