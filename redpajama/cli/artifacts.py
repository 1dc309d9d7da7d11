"""`redpajama artifacts ...`: build the models and lists that signals need, from files on disk."""

from __future__ import annotations

from pathlib import Path

import typer

from redpajama.cli.app import app

artifacts_app = typer.Typer(
    help="Build the models and lists that signals need, from files on disk.", no_args_is_help=True
)
app.add_typer(artifacts_app, name="artifacts")


@artifacts_app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama artifacts ut1 blacklists.tar.gz -o artifacts/ut1.parquet\n\n"
        "    redpajama signals out/ --ut1-map artifacts/ut1.parquet"
    )
)
def ut1(
    tarball: Path = typer.Argument(..., exists=True, dir_okay=False, help="A UT1 blacklists tarball."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the domain map (Parquet)."),
    flat_category: str = typer.Option(
        "adult",
        "--flat-category",
        help="Category of a tarball holding a single list (`domains` at its root).",
    ),
) -> None:
    """Build the domain -> category map that `rps_doc_ut1_blacklist` looks up (RPv2's 13 categories)."""
    from redpajama.quality_signals.resources import build_ut1_domain_map, save_ut1_domain_map

    mapping = build_ut1_domain_map(tarball, flat_category=flat_category)
    save_ut1_domain_map(mapping, output)
    typer.echo(f"ut1: {len(mapping):,} domains -> {output}")


@artifacts_app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama artifacts build --config pipelines/artifacts/example.yaml -o bundles/en-v1\n\n"
        "    REDPAJAMA_ARTIFACTS=bundles/en-v1 redpajama signals out/"
    )
)
def build(
    config: Path = typer.Option(
        ..., "--config", "-c", exists=True, dir_okay=False, help="Build config (YAML)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Bundle folder to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files of an existing bundle."),
) -> None:
    """Train a bundle's models from reference corpora: fastText classifiers, DSIR counts, SentencePiece + KenLM, cutoffs."""
    from redpajama.pipelines.artifacts.build import build_bundle
    from redpajama.pipelines.artifacts.config import load_config

    report = build_bundle(load_config(config), output, overwrite=overwrite)
    files = report.manifest["files"]
    total = sum(entry["bytes"] for entry in files)
    for entry in files:
        typer.echo(f"{entry['bytes']:>12,}  {entry['path']}")
    for lang, params in report.manifest["parameters"]["languages"].items():
        check = params.get("lm", {}).get("validation", {})
        if check.get("heldout_docs"):
            typer.echo(
                f"{lang} lm: held-out median perplexity {check['median_perplexity']} "
                f"(shuffled {check['median_perplexity_shuffled']})"
            )
        if "cutoffs" in params:
            p30, p60 = params["cutoffs"]["p30_p60"]
            typer.echo(f"{lang} cutoffs: p30={p30} p60={p60}")
    typer.echo(f"bundle: {output} ({len(files)} files, {total:,} bytes)")


@artifacts_app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama artifacts cutoffs out/ -o my-bundle/cutoffs.csv\n\n"
        "    redpajama artifacts cutoffs out/ --artifacts my-bundle   # writes my-bundle/cutoffs.csv"
    )
)
def cutoffs(
    out: Path = typer.Argument(..., exists=True, file_okay=False, help="Output folder of the ccnet stage."),
    artifacts: Path | None = typer.Option(
        None, "--artifacts", help="Bundle whose cutoffs.csv to write (default: print only unless -o)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to write cutoffs.csv."),
) -> None:
    """Recompute perplexity cutoffs (30th/60th percentiles per language) from `OUT/documents/**/*.parquet`."""
    from redpajama.pipelines.artifacts.cutoffs import percentiles, perplexities_by_language, write_cutoffs

    found = {}
    for lang, values in sorted(perplexities_by_language(out).items()):
        result = percentiles(values)
        if result:
            found[lang] = result
            typer.echo(f"{lang}\tp30={result[0]}\tp60={result[1]}\t({len(values):,} documents)")
    if not found:
        typer.secho("no perplexity values found", fg="red", err=True)
        raise typer.Exit(1)
    target = output or (artifacts / "cutoffs.csv" if artifacts else None)
    if target:
        write_cutoffs(target, found)
        typer.echo(f"cutoffs: {target}")


@artifacts_app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama artifacts fetch -o bundles/rpv2            # lid.176.bin, CCNet en LM + SentencePiece, wikiref\n\n"
        "    redpajama artifacts fetch ccnet-de ccnet-fr -o bundles/rpv2\n\n"
        "    redpajama artifacts fetch lid --base-url http://mirror.local/   # same paths on a mirror"
    )
)
def fetch(
    names: list[str] | None = typer.Argument(
        None, help="Artifacts or groups (lid, `ccnet-<lang>`, ccnet, wikiref, all; see `list`)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Bundle folder (default: $REDPAJAMA_ARTIFACTS)."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Mirror that replaces the upstream hosts."),
    retries: int = typer.Option(4, "--retries", help="Retries per file on network errors."),
    force: bool = typer.Option(False, "--force", help="Download again even when the file is present."),
) -> None:
    """Download the official artifacts (fastText LID, CCNet's Wikipedia LMs, RPv2's wikiref classifier)."""
    import os

    from redpajama.artifacts.bundle import ENV_VAR
    from redpajama.artifacts.catalogue import DEFAULT_NAMES, resolve
    from redpajama.artifacts.fetch import fetch as run_fetch

    target = output or (Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None)
    if target is None:
        raise typer.BadParameter(f"give -o BUNDLE or set ${ENV_VAR}", param_hint="--output")
    try:
        wanted = resolve(names or list(DEFAULT_NAMES))
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="NAMES") from None

    def started(artifact, url: str) -> None:
        typer.echo(f"fetching {artifact.name}: {url}")

    for item in run_fetch(wanted, target, base_url=base_url, retries=retries, force=force, on_start=started):
        state = (
            "present"
            if item.skipped
            else (f"resumed at {item.resumed_from:,}" if item.resumed_from else "done")
        )
        typer.echo(
            f"{item.artifact.name}: {item.bytes:,} bytes -> {item.path} ({state}, sha256 {item.sha256[:12]})"
        )


@artifacts_app.command(
    name="list",
    epilog="Example:\n\n    redpajama artifacts list\n\n    redpajama artifacts list --artifacts bundles/rpv2",
)
def list_(
    artifacts: Path | None = typer.Option(
        None, "--artifacts", help="Bundle to list (default: the shipped one and $REDPAJAMA_ARTIFACTS)."
    ),
) -> None:
    """What is installed (artifact, language, path, size, sha256, source) and what expected files are missing."""
    import os

    from redpajama.artifacts.bundle import DEFAULT_BUNDLE, ENV_VAR
    from redpajama.artifacts.listing import installed, missing

    roots = [artifacts] if artifacts else [DEFAULT_BUNDLE]
    if not artifacts and os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    for root in roots:
        typer.secho(f"bundle: {root}", bold=True)
        rows = installed(root) if root.is_dir() else []
        if rows:
            typer.echo(f"  {'artifact':<26}{'lang':<6}{'path':<44}{'size':>12}  {'sha256':<14}source")
        for row in rows:
            typer.echo(
                f"  {row.artifact:<26}{row.language:<6}{row.path:<44}{row.bytes:>12,}  {row.sha256[:12]:<14}{row.source}"
            )
        gaps = missing(root)
        if gaps:
            typer.echo(f"  missing ({len(gaps)}):")
            for gap in gaps:
                typer.echo(f"    {gap.artifact:<24}{gap.language:<6}{gap.path:<44}{gap.hint}")
