"""The dataset card: `README.md` with YAML front matter the Hub reads, and a section for people.

`configs:` follows the Hub's manual configuration of dataset repos: one config per language folder
plus `all` (the default), each with a single `train` split whose `path` is a glob over its shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from redpajama import __version__
from redpajama.hub.layout import LanguageFiles
from redpajama.hub.provenance import Provenance
from redpajama.hub.stats import DataStats, GroupCount

# Codes the Hub does not take as a `language:` value; they still get a config of their own.
NOT_LANGUAGES = frozenset({"und", "unknown", "all", "mul", "zxx"})
LICENSE_NAMES = {
    "odc-by": "Open Data Commons Attribution License (ODC-By) v1.0",
    "cc-by-4.0": "Creative Commons Attribution 4.0",
    "apache-2.0": "Apache License 2.0",
}


@dataclass(frozen=True)
class CardConfig:
    repo_id: str
    license: str = "odc-by"
    tags: tuple[str, ...] = ("redpajama", "web", "common-crawl", "pretraining")
    pretty_name: str | None = None


@dataclass
class CardInputs:
    languages: list[LanguageFiles]
    stats: DataStats
    provenance: Provenance = field(default_factory=Provenance)


def size_category(rows: int) -> str:
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
        (10_000_000_000, "1B<n<10B"),
        (100_000_000_000, "10B<n<100B"),
        (1_000_000_000_000, "100B<n<1T"),
    ]
    return next((label for bound, label in bounds if rows < bound), "n>1T")


def front_matter(config: CardConfig, inputs: CardInputs) -> dict:
    configs = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [{"split": "train", "path": "data/*/train-*.parquet"}],
        }
    ]
    configs += [
        {
            "config_name": lf.language,
            "data_files": [{"split": "train", "path": f"data/{lf.language}/train-*.parquet"}],
        }
        for lf in inputs.languages
    ]
    meta: dict = {
        "pretty_name": config.pretty_name or config.repo_id.split("/")[-1],
        "license": config.license,
        "task_categories": ["text-generation"],
        "tags": list(config.tags),
        "size_categories": [size_category(inputs.stats.docs)],
        "configs": configs,
    }
    languages = [lf.language for lf in inputs.languages if lf.language not in NOT_LANGUAGES]
    if languages:
        meta["language"] = languages
    return meta


def _table(title: str, groups: list[GroupCount]) -> list[str]:
    if not groups:
        return []
    lines = [f"| {title} | documents | characters | ≈ tokens |", "|---|---:|---:|---:|"]
    lines += [f"| `{g.key}` | {g.docs:,} | {g.chars:,} | {g.chars // 4:,} |" for g in groups]
    return [*lines, ""]


def _stage_line(stage: str, counts: dict) -> str:
    """`stage` (in -> out docs); dedup's out is the duplicates it found, not documents kept."""
    if not {"docs_in", "docs_out"} <= counts.keys():
        return f"`{stage}`"
    if stage == "dedup":
        return f"`{stage}` ({counts['docs_in']:,} docs, {counts['docs_out']:,} duplicates found)"
    return f"`{stage}` ({counts['docs_in']:,} → {counts['docs_out']:,} docs)"


def body(config: CardConfig, inputs: CardInputs) -> str:
    stats, prov = inputs.stats, inputs.provenance
    name = config.repo_id
    out = [
        f"# {name}",
        "",
        f"Web documents curated with `redpajama` {__version__}: the RedPajama-V2 pipeline of ingest, CCNet language id and perplexity buckets, "
        "quality signals, deduplication and SQL rule filters.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{name}", split="train")  # every language',
    ]
    if inputs.languages:
        first = inputs.languages[0].language
        out.append(f'ds = load_dataset("{name}", "{first}", split="train")  # one language')
    out += [
        "```",
        "",
        "Files: `data/<language>/train-XXXXX-of-YYYYY.parquet` (zstd). Columns: `id`, `text` (the "
        "document's `raw_content`), then the RedPajama-V2 document fields that were present (`url`, "
        "`date_download`, `digest`, `length`, `nlines`, `source_domain`, `title`, `language`, "
        "`language_score`, `perplexity`, `bucket`, `snapshot_id`, ...) and any filter provenance "
        "columns. Dropped: `source_file`, `line_ids`, `metadata`.",
        "",
        "## Provenance",
        "",
    ]
    if stats.snapshots:
        out.append("- Common Crawl snapshots: " + ", ".join(f"`{s}`" for s in stats.snapshots))
    if prov.inputs:
        shown = ", ".join(f"`{i}`" for i in prov.inputs[:20])
        more = f" and {len(prov.inputs) - 20} more" if len(prov.inputs) > 20 else ""
        out.append(f"- Inputs ({len(prov.inputs)}): {shown}{more}")
    if prov.stages:
        stages = ", ".join(_stage_line(s, v) for s, v in prov.stages.items())
        out.append(f"- Pipeline stages: {stages}")
    out.append(f"- Rule set: {', '.join(f'`{r}`' for r in prov.rules) if prov.rules else 'none recorded'}")
    out.append(f"- Deduplication: {prov.dedup or 'none recorded'}")
    out.append("")
    if prov.rule_drops:
        out += ["| rule | documents dropped |", "|---|---:|"]
        out += [f"| `{rule}` | {n:,} |" for rule, n in prov.rule_drops.items()]
        out.append("")
    out += [
        "## Statistics",
        "",
        f"{stats.docs:,} documents, {stats.chars:,} characters (≈ {stats.chars // 4:,} tokens at 4 "
        "characters per token).",
        "",
        *_table("language", stats.by_language),
        *_table("bucket", stats.by_bucket),
        *_table("snapshot", stats.by_snapshot),
        "## License",
        "",
        f"`{config.license}`"
        + (f": {LICENSE_NAMES[config.license]}" if config.license in LICENSE_NAMES else "")
        + ". The documents come from Common Crawl; use is also subject to the "
        "[Common Crawl terms of use](https://commoncrawl.org/terms-of-use).",
        "",
    ]
    return "\n".join(out)


def render(config: CardConfig, inputs: CardInputs) -> str:
    meta = yaml.safe_dump(front_matter(config, inputs), sort_keys=False, allow_unicode=True)
    return f"---\n{meta}---\n\n{body(config, inputs)}"


def write(folder: Path, config: CardConfig, inputs: CardInputs) -> Path:
    path = folder / "README.md"
    path.write_text(render(config, inputs), encoding="utf-8")
    return path
