"""Build the whole repo folder (data shards + card), atomically: a temp folder renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from redpajama.errors import UserError
from redpajama.hub import card, layout, provenance, stats


@dataclass(frozen=True)
class PublishConfig:
    repo_id: str
    license: str = "odc-by"
    max_shard_bytes: int = 500 * 1000 * 1000

    def layout(self) -> layout.LayoutConfig:
        return layout.LayoutConfig(
            max_shard_bytes=self.max_shard_bytes,
            row_group_bytes=min(layout.LayoutConfig.row_group_bytes, self.max_shard_bytes),
        )


@dataclass
class BuiltFolder:
    path: Path
    languages: list[layout.LanguageFiles]
    stats: stats.DataStats

    @property
    def files(self) -> list[Path]:
        return [f for lf in self.languages for f in lf.files]


def build_into(tree: Path, out: Path, config: PublishConfig) -> BuiltFolder:
    """Write the repo layout into the existing empty folder `out`."""
    sources = layout.find_sources(tree)
    languages = layout.write_data(sources, out, config.layout())
    data_stats = stats.compute(out)
    card.write(
        out,
        card.CardConfig(repo_id=config.repo_id, license=config.license),
        card.CardInputs(languages=languages, stats=data_stats, provenance=provenance.read(tree)),
    )
    return BuiltFolder(out, languages, data_stats)


def build(tree: Path, dest: Path, config: PublishConfig) -> BuiltFolder:
    """Write the repo layout to `dest`, which appears only once complete."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(
            f"{dest} already exists and is not empty", "remove it or choose another --dry-run folder"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        built = build_into(tree, temp, config)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(temp, dest)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return _moved(built, temp, dest)


def _moved(built: BuiltFolder, old: Path, new: Path) -> BuiltFolder:
    for lf in built.languages:
        lf.files = [new / f.relative_to(old) for f in lf.files]
    return BuiltFolder(new, built.languages, built.stats)
