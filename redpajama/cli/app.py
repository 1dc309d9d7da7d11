"""The typer app every verb registers on, and the entry point that maps errors to one line."""

from __future__ import annotations

import os
import sys

import typer

from redpajama import __version__

app = typer.Typer(
    name="redpajama",
    help="Turn raw web crawls into curated LLM pretraining data, the RedPajama-V2 way.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens and document text: never print them.
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"redpajama {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Turn raw web crawls into curated LLM pretraining data, the RedPajama-V2 way."""


def _register_verbs() -> None:
    # Imported for their side effect of adding commands to `app`.
    from redpajama.cli import (  # noqa: F401
        ablate,
        artifacts,
        ccnet,
        dedup,
        filter,
        ingest,
        minhash,
        publish,
        report,
        run,
        signals,
        sql,
        tokenize,
        train,
    )


def main() -> None:
    from redpajama.cli.errors import describe

    _register_verbs()
    try:
        # Click itself handles usage errors (usage + exit 2), --help and typer.Exit codes.
        app()
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a line
        if os.environ.get("REDPAJAMA_DEBUG") == "1":
            raise
        message, hint, code = describe(exc)
        typer.secho(f"Error: {message}", fg="red", err=True)
        if hint:
            typer.echo(f"Hint: {hint}", err=True)
        sys.exit(code)
