"""The survival funnel of a rule sequence and sample documents each rule keeps and drops.

A predicate that is NULL (a signal missing for a document) counts as failing: the filter cannot
vouch for a document it has no value for. Everything is one pass over `signals` for the counts,
one for the sample ids (`min_by(id, hash(id), n)`: a deterministic, bounded top-n per rule) and
one over `documents` for the sampled texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from redpajama.report.rulesets import Rule
from redpajama.report.tree import quote_ident


@dataclass
class Step:
    rule: str
    predicate: str
    survivors: int  # after this rule and all before it
    dropped_alone: int  # documents this rule drops on its own
    kept_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # signal columns the predicate reads


@dataclass
class Funnel:
    total: int
    steps: list[Step]
    final_kept_ids: list[str] = field(default_factory=list)
    error: str | None = None


def _keep(rule: Rule) -> str:
    return f"coalesce(({rule.predicate}), FALSE)"


def funnel(con: duckdb.DuckDBPyConnection, rules: list[Rule], sample: int, doc_columns: list[str]) -> Funnel:
    if not rules:
        return Funnel(int(con.execute("SELECT count(*) FROM signals").fetchone()[0]), [])
    keeps = [_keep(r) for r in rules]
    exprs = ["count(*)"]
    for i, k in enumerate(keeps):
        exprs.append(f"count_if({' AND '.join(keeps[: i + 1])})")
        exprs.append(f"count_if(NOT {k})")
    n = max(int(sample), 0)
    if n:
        for k in keeps:
            exprs.append(f"min_by(id, hash(id), {n}) FILTER (WHERE {k})")
            exprs.append(f"min_by(id, hash(id), {n}) FILTER (WHERE NOT {k})")
        exprs.append(f"min_by(id, hash(id), {n}) FILTER (WHERE {' AND '.join(keeps)})")
    try:
        row = con.execute(f"SELECT {', '.join(exprs)} FROM signals").fetchone()
    except duckdb.Error as exc:
        return Funnel(0, [], error=str(exc).splitlines()[0])
    total, rest = int(row[0]), row[1:]
    steps = []
    for i, rule in enumerate(rules):
        used = [c for c in doc_columns if re.search(rf"\b{re.escape(c)}\b", rule.predicate)]
        steps.append(Step(rule.name, rule.predicate, int(rest[2 * i]), int(rest[2 * i + 1]), columns=used))
    final: list[str] = []
    if n:
        ids = rest[2 * len(rules) :]
        for i, step in enumerate(steps):
            step.kept_ids = sorted(ids[2 * i] or [])
            step.dropped_ids = sorted(ids[2 * i + 1] or [])
        final = sorted(ids[-1] or [])
    return Funnel(total, steps, final)


@dataclass
class Sample:
    id: str
    url: str | None
    lang: str
    bucket: str
    head: str  # first characters of raw_content
    length: int | None
    values: dict[str, float | None] = field(default_factory=dict)


def fetch_samples(
    con: duckdb.DuckDBPyConnection, ids: set[str], columns: list[str], chars: int, has_documents: bool
) -> dict[str, Sample]:
    """Texts and signal values of the sampled ids, in one scan of each view."""
    if not ids:
        return {}
    con.execute("CREATE OR REPLACE TEMP TABLE _ids (id VARCHAR)")
    con.executemany("INSERT INTO _ids VALUES (?)", [(i,) for i in sorted(ids)])
    out: dict[str, Sample] = {}
    if has_documents:
        for id_, url, lang, bucket, head, length in con.execute(
            f"SELECT id, url, lang, bucket, left(raw_content, {int(chars)}), length "
            "FROM documents SEMI JOIN _ids USING (id)"
        ).fetchall():
            out[id_] = Sample(id_, url, lang, bucket, head or "", length)
    cols = ", ".join(quote_ident(c) for c in columns)
    for row in con.execute(
        f"SELECT id, lang, bucket{', ' + cols if cols else ''} FROM signals SEMI JOIN _ids USING (id)"
    ).fetchall():
        s = out.setdefault(row[0], Sample(row[0], None, row[1], row[2], "", None))
        s.values = dict(zip(columns, row[3:], strict=True))
    return out
