"""What the card says about where the data came from, read from the tree's `_runs/` records.

The filter stage's `stats.json` is read tolerantly (known keys if present, nothing if not) so that a
tree made by an older or newer filter still publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_INPUTS_LISTED = 20


@dataclass
class Provenance:
    inputs: list[str] = field(default_factory=list)  # names of ingested input files, no local paths
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> docs_in/docs_out
    rules: list[str] = field(default_factory=list)
    rule_drops: dict[str, int] = field(default_factory=dict)
    dedup: str | None = None


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rule_drops(stats: dict[str, Any]) -> dict[str, int]:
    rules = stats.get("rules")
    if isinstance(rules, list) and rules and all(isinstance(r, dict) for r in rules):
        # pipelines/filter.py: [{"name", "failed", "dropped_first"}]; first failure = why it was dropped
        return {
            str(r.get("name")): int(r.get("dropped_first", r.get("dropped", 0)) or 0)
            for r in rules
            if r.get("name")
        }
    for key in ("dropped_by_rule", "drops_by_rule", "rule_drops", "per_rule", "rules_dropped", "dropped"):
        value = stats.get(key)
        if isinstance(value, dict):
            out = {}
            for rule, count in value.items():
                if isinstance(count, dict):  # {"rule": {"dropped": n, ...}}
                    count = count.get("dropped", count.get("drops"))
                if isinstance(count, int):
                    out[str(rule)] = count
            if out:
                return out
    return {}


def _rules(stats: dict[str, Any]) -> list[str]:
    for key in ("rules", "rule_sets", "rule_set"):
        value = stats.get(key)
        if isinstance(value, str):
            return [r for r in value.split(",") if r]
        if isinstance(value, list):
            return [str(r.get("name")) if isinstance(r, dict) else str(r) for r in value]
        if isinstance(value, dict):
            return [str(r) for r in value]
    return []


def read(tree: Path) -> Provenance:
    runs = tree / "_runs"
    prov = Provenance()
    tasks = sorted((runs / "ingest" / "tasks").glob("*.json")) if runs.is_dir() else []
    prov.inputs = [str(_load(t).get("task", t.stem)) for t in tasks]
    for stats_file in sorted(runs.glob("*/stats.json")) if runs.is_dir() else []:
        stats = _load(stats_file)
        prov.stages[stats_file.parent.name] = {
            k: stats[k] for k in ("docs_in", "docs_out") if isinstance(stats.get(k), int)
        }
    filter_stats = _load(runs / "filter" / "stats.json")
    prov.rules = _rules(filter_stats)
    prov.rule_drops = _rule_drops(filter_stats)
    dedup = filter_stats.get("dedup")
    prov.dedup = str(dedup) if dedup else None
    return prov
