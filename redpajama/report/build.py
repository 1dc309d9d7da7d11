"""Gather everything the page shows, render it, write `index.html` atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from redpajama.io.atomic import write_bytes
from redpajama.report import funnel as funnel_mod
from redpajama.report import page, rulesets, stats
from redpajama.report import tree as tree_mod


@dataclass(frozen=True)
class ReportConfig:
    rules: tuple[str, ...] = ("gopher",)
    sample: int = 5  # documents kept and dropped shown per rule
    chars: int = 400  # first characters shown of a sampled document
    bins: int = 30
    max_groups: int = 6  # (lang, bucket) lines per histogram: the largest groups
    memory_gb: float = 2.0
    threads: int | None = None


@dataclass
class ReportData:
    root: Path
    tree: tree_mod.Tree
    config: ReportConfig
    totals: stats.Counts | None = None
    by: dict[str, list[tuple[str, stats.Counts]]] = field(default_factory=dict)
    lang_bucket: dict[tuple[str, str], int] = field(default_factory=dict)
    histograms: list[stats.Histogram] = field(default_factory=list)
    groups: list[tuple[str, str]] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    rules: list[rulesets.Rule] = field(default_factory=list)
    rules_source: str = ""
    line_rules: list[str] = field(default_factory=list)  # named but not in the funnel
    funnel: funnel_mod.Funnel | None = None
    samples: dict[str, funnel_mod.Sample] = field(default_factory=dict)
    clusters: list[stats.Clusters] = field(default_factory=list)


def _descriptions() -> dict[str, str]:
    try:
        from redpajama.quality_signals.registry import SIGNALS
    except ImportError:  # the report must not depend on the signal models being importable
        return {}
    return {name: s.description for name, s in SIGNALS.items()}


def gather(out: str | os.PathLike[str], config: ReportConfig) -> ReportData:
    root = Path(out).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"output folder not found: {root}")
    tree = tree_mod.discover(root)
    data = ReportData(root, tree, config)
    # Before any query: an unknown rule set name is a usage error, not a half-built report.
    data.rules, data.rules_source, data.line_rules = rulesets.load(list(config.rules))
    con = tree_mod.connect(tree, config.memory_gb, config.threads)
    try:
        if tree.has_documents:
            data.totals = stats.totals(con)
            data.by = {k: stats.breakdown(con, k) for k in ("snapshot", "lang", "bucket")}
            data.lang_bucket = stats.lang_bucket(con)
        if tree.has_signals:
            columns = stats.signal_columns(con)
            data.histograms = stats.histograms(con, columns, config.bins)
            data.descriptions = _descriptions()
            sizes: dict[tuple[str, str], int] = {}
            for h in data.histograms[:1]:
                sizes = {g: sum(c) for g, c in h.by_group.items()}
            # A group of a handful of documents draws 100% spikes that hide the others.
            floor = max(10, 0.01 * sum(sizes.values()))
            big = [g for g in sizes if sizes[g] >= floor]
            data.groups = sorted(big, key=lambda g: (-sizes[g], g))[: config.max_groups]
            doc_cols = [c for c, level in columns if level == "document"]
            data.funnel = funnel_mod.funnel(con, data.rules, config.sample, doc_cols)
            ids = set(data.funnel.final_kept_ids)
            used: list[str] = []
            for step in data.funnel.steps:
                ids.update(step.kept_ids, step.dropped_ids)
                used += [c for c in step.columns if c not in used]
            data.samples = funnel_mod.fetch_samples(con, ids, used, config.chars, tree.has_documents)
        data.clusters = stats.cluster_sizes(con, tree)
    finally:
        con.close()
    return data


def build_report(
    out: str | os.PathLike[str],
    dest: str | os.PathLike[str] | None = None,
    config: ReportConfig | None = None,
) -> Path:
    """Write `<dest>/index.html` (dest defaults to `report/`, as the command's) and return its path."""
    config = config or ReportConfig()
    data = gather(out, config)
    target = Path(dest) if dest is not None else Path("report")
    final = target / "index.html"
    write_bytes(final, page.render(data).encode("utf-8", errors="replace"))
    return final
