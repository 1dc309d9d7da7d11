"""`redpajama run`: a whole pipeline from a YAML recipe, stage after stage."""

from __future__ import annotations

from pathlib import Path

import typer

from redpajama.cli.app import app
from redpajama.cli.common import ADDRESS, ENGINE_ARG, OVERWRITE, PROGRESS, RUNNER, WORKERS, run_options


@app.command(
    epilog=(
        "Examples:\n\n"
        "    redpajama run pipelines/recipes/quick.yaml -o out/quick\n\n"
        "    redpajama run rpv2 -o out/rpv2 --runner ray --address ray://head:10001\n\n"
        "    redpajama run rpv2 -o /shared/out --runner beam --engine-arg=--runner=FlinkRunner"
    )
)
def run(
    recipe: str = typer.Argument(..., help="A recipe YAML file, or a shipped recipe's name (quick, rpv2)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output folder (default: the recipe's `output`)."
    ),
    workers: int = WORKERS,
    runner: str = RUNNER,
    address: str | None = ADDRESS,
    engine_args: list[str] | None = ENGINE_ARG,
    overwrite: bool = OVERWRITE,
    progress: bool | None = PROGRESS,
) -> None:
    """Run the stages a recipe lists (ingest, ccnet, signals, minhash, dedup, filter, export) in order.

    Every stage runs on the same engine. Resumable like each stage: a rerun skips finished work.
    Exits 1 when a stage has failed tasks (the later stages do not run).
    """
    from redpajama.pipelines import recipe as recipes

    plan = recipes.load(recipe)  # every key checked before anything runs
    options = run_options(workers, progress, overwrite, runner, address, engine_args)
    done = recipes.run(plan, output, options, echo=typer.echo)
    name, last = done[-1]
    for key, reason in last.failed.items():
        typer.secho(f"failed: {name}: {key}: {reason}", fg="red", err=True)
    if last.failed:
        raise typer.Exit(1)
