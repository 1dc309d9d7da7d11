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
        "    redpajama artifacts ut1 blacklists.tar.gz -o artifacts/ut1.parquet\n"
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
