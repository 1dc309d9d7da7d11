"""`redpajama publish`: an output tree -> a Hugging Face dataset repo (or a dry-run folder)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

from redpajama.cli.app import app
from redpajama.cli.common import FORMAT, OutputMode
from redpajama.errors import UserError
from redpajama.hub import folder as hub_folder
from redpajama.hub import upload as hub_upload


@app.command(
    epilog=(
        "Example:\n\n"
        "    redpajama publish curated/ --repo-id my-org/my-web-data --dry-run hub-folder/\n\n"
        "    HF_TOKEN=hf_... redpajama publish curated/ --repo-id my-org/my-web-data --private"
    )
)
def publish(
    tree: Path = typer.Argument(..., help="Output tree to publish (its documents/ folder)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Dataset repo on the Hub, ORG/NAME."),
    dry_run: Path | None = typer.Option(
        None, "--dry-run", help="Write the repo folder here and upload nothing (no token, no network)."
    ),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    revision: str | None = typer.Option(None, "--revision", help="Branch to upload to (created if missing)."),
    license_id: str = typer.Option("odc-by", "--license", help="Licence id for the card (Hub licence ids)."),
    max_shard_mb: float = typer.Option(500.0, "--max-shard-mb", help="Largest Parquet shard, in MB."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)."
    ),
    retries: int = typer.Option(5, "--retries", help="Retries of a failed upload (429/5xx/network)."),
    staging: Path | None = typer.Option(
        None, "--staging", help="Folder for the temporary repo copy before upload (default: system temp)."
    ),
    fmt: OutputMode = FORMAT,
) -> None:
    """Publish documents as a Hugging Face dataset: `data/<lang>/train-XXXXX-of-YYYYY.parquet` + a card.

    The card (`README.md`) carries `configs:` (`all` and one per language), licence, provenance (inputs,
    snapshots, stages, rule set and per-rule drops from `_runs/filter/stats.json`, dedup) and statistics.
    The token comes from `HF_TOKEN` or `hf auth login` and is never printed.
    """
    if "/" not in repo_id.strip("/"):
        raise UserError(f"--repo-id {repo_id!r} is not ORG/NAME", "e.g. --repo-id my-org/my-web-data")
    if max_shard_mb <= 0:
        raise UserError("--max-shard-mb must be positive")
    config = hub_folder.PublishConfig(
        repo_id=repo_id, license=license_id, max_shard_bytes=int(max_shard_mb * 1000 * 1000)
    )
    if dry_run is not None:
        built = hub_folder.build(tree, dry_run, config)
        _report(built, fmt, {"folder": str(dry_run)})
        return
    # Resolve the token before hours of sharding, so a missing login fails at once.
    token = hub_upload.resolve_token()
    upload_config = hub_upload.UploadConfig(
        repo_id=repo_id, private=private, revision=revision, endpoint=endpoint, retries=retries
    )
    with tempfile.TemporaryDirectory(prefix="redpajama-publish-", dir=staging) as temp:
        built = hub_folder.build_into(tree, Path(temp), config)
        url = hub_upload.upload(
            Path(temp), upload_config, token, on_retry=lambda m: typer.echo(f"retry: {m}", err=True)
        )
    _report(built, fmt, {"repo_id": repo_id, "commit_url": url})


def _report(built: hub_folder.BuiltFolder, fmt: OutputMode, where: dict[str, str]) -> None:
    summary = {
        **where,
        "documents": built.stats.docs,
        "characters": built.stats.chars,
        "files": len(built.files),
        "languages": {lf.language: lf.rows for lf in built.languages},
    }
    if fmt is OutputMode.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"publish: {built.stats.docs:,} documents in {len(built.files)} shard(s), "
        f"{len(built.languages)} language config(s)"
    )
    for key, value in where.items():
        typer.echo(f"{key}: {value}")
