"""Filter: named SQL rules (+ an optional dedup anti-join) over an output tree -> a curated tree.

    OUT/documents/<snapshot>/<shard>/<lang>_<bucket>.parquet  (+ OUT/quality_signals/ same path)
        -> CURATED/documents/<same path>   kept documents: same columns + provenance
        -> CURATED/dropped/<same path>     with --keep-dropped: the rest, with the first failing rule
        -> CURATED/_runs/filter/stats.json per-rule drop counts and the survival funnel

One task per documents file: DuckDB joins it with its signals file on `id`, evaluates every rule
(NULL fails), anti-joins the chosen duplicates (one mode, or exact and fuzzy combined so that a copy
of every group survives: `FilterConfig.dedup_modes`) and streams the result into Parquet in the input's
row order, so memory stays bounded by one file. Provenance: `passed_rules` (list of rule names)
and `first_failed_rule` (NULL for kept rows; `no_signals` for a document without a signals row,
a rule name, `lines_all_removed` or `duplicate:<mode>`). Line rules keep the lines that pass all of them: `raw_content` is rebuilt
from the kept line spans and `length`/`nlines` follow; a document left with no line is dropped.

The order of attribution is: missing signals, document rules in the order given, then line rules,
then dedup. A rule that reads a signal no document has (say, a classifier the artifact bundle
lacks) fails everywhere; the run says so in `warnings` instead of silently keeping nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from redpajama.errors import UserError
from redpajama.io import atomic, layout, markers
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.rules import Rule
from redpajama.query import parquet_files
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

STAGE = "filter"
SIGNALS = "quality_signals"
DROPPED = "dropped"
LINES_EMPTY = "lines_all_removed"
NO_SIGNALS = "no_signals"  # a document without a signals row: no rule can pass, none is to blame
DUPLICATES, CLUSTERS, EXACT = "duplicates", "clusters", "exact"
PROVENANCE = [pa.field("passed_rules", pa.list_(pa.string())), pa.field("first_failed_rule", pa.string())]


@dataclass(kw_only=True)
class FilterConfig:
    source: str  # the output tree to read (documents/, quality_signals/, duplicates/)
    rules: tuple[Rule, ...] = ()
    # Folders under duplicates/: 'exact', 'fuzzy-0.8', ...; or one exact and one fuzzy mode together
    # (`dedup_modes`).
    dedup: str | tuple[str, ...] | None = None
    keep_dropped: bool = False
    threads: int = 1  # DuckDB threads per task; tasks already run in parallel processes
    batch_rows: int = 10_000

    def fingerprint(self) -> str:
        """Changes whenever a rerun must not reuse finished files (other rules, dedup, source)."""
        data = {
            "source": str(Path(self.source).resolve()),
            "rules": [asdict(r) for r in self.rules],
            "dedup": list(self.dedup_modes),
            "keep_dropped": self.keep_dropped,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    @property
    def dedup_modes(self) -> tuple[str, ...]:
        """The dedup modes in the order their drops are attributed: the fuzzy mode first.

        One mode drops what its duplicates/ folder lists. Exact and fuzzy together would keep
        different copies of a pair (exact the copy its Bloom filter met first, fuzzy the cluster
        member its keep policy picked) and so could drop every copy; combined, fuzzy decides for every
        document in one of its clusters (identical documents share a cluster when both have a
        signature) and exact only for the others:
            drop = fuzzy duplicates + (exact duplicates - members of fuzzy clusters).
        So one copy of a group always survives: the fuzzy cluster's kept member, or exact's."""
        modes = (self.dedup,) if isinstance(self.dedup, str) else tuple(self.dedup or ())
        return tuple(sorted(modes, key=lambda m: m == EXACT))

    @property
    def document_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.level == "document"]

    @property
    def line_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.level == "line"]


@dataclass(frozen=True)
class FilterTask:
    key: str  # documents file relative to the source root
    weight: int


@dataclass
class Counts:
    """Per-task rule statistics, merged per run."""

    docs: int = 0
    kept: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # every rule a document fails
    first_failed: Counter[str] = field(default_factory=Counter)  # the drop reason
    lines_in: int = 0
    lines_kept: int = 0
    lines_failed: Counter[str] = field(default_factory=Counter)  # lines failing each line rule

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs and miscounts.
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}

    def merge(self, other: Counts) -> None:
        self.docs += other.docs
        self.kept += other.kept
        self.lines_in += other.lines_in
        self.lines_kept += other.lines_kept
        for name in ("failed", "first_failed", "lines_failed"):
            getattr(self, name).update(getattr(other, name))


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dup_files(source: Path, folder: str, mode: str, relative: Path) -> list[Path]:
    # Our tree and RPv2's partition duplicates (and clusters) like the documents: the same-path file
    # holds every one of this documents file. Otherwise fall back to the whole mode (correct, slower).
    same = source / folder / mode / relative
    return [same] if same.exists() else parquet_files(source / folder / mode)


def _ids_sql(files: list[Path]) -> str:
    listed = ", ".join(_q(str(f)) for f in files)
    return f"SELECT DISTINCT id FROM read_parquet([{listed}], union_by_name = true)"


def _dedup_sql(config: FilterConfig, source: Path, relative: Path) -> tuple[str, list[str]]:
    """(LEFT JOINs, one boolean expression a mode: the document is dropped as that mode's duplicate)."""
    modes = config.dedup_modes
    joins, flags = [], []
    for n, mode in enumerate(modes):
        joins.append(
            f"LEFT JOIN ({_ids_sql(_dup_files(source, DUPLICATES, mode, relative))}) dup{n} ON d.id = dup{n}.id"
        )
        flags.append(f"dup{n}.id IS NOT NULL")
    if len(modes) == 2:  # fuzzy, exact: exact decides only outside the fuzzy clusters (dedup_modes)
        clusters = _dup_files(source, CLUSTERS, modes[0], relative)
        joins.append(f"LEFT JOIN ({_ids_sql(clusters)}) clu ON d.id = clu.id")
        flags[1] = f"({flags[1]} AND clu.id IS NULL)"
    return " ".join(joins), flags


def _signals_sql(source: Path, relative: Path) -> str:
    same = source / SIGNALS / relative
    if same.exists():
        problem = markers.parquet_damage(same)
        if problem:  # fails this documents file's task only, naming the signals file
            raise UserError(
                problem, f"rerun `redpajama signals {source}` (it redoes damaged files), then filter"
            )
        return f"SELECT *, true AS _has_signals FROM read_parquet({_q(str(same))})"
    # No signals file for this documents file (e.g. a tail bucket): join an empty one of the same
    # columns, so every signal is NULL and the documents go out as `no_signals`.
    other = _any_signals(source)
    if other is None:
        return "SELECT NULL::VARCHAR AS id, true AS _has_signals LIMIT 0"
    return f"SELECT *, true AS _has_signals FROM read_parquet({_q(str(other))}) LIMIT 0"


def build_query(config: FilterConfig, source: Path, task_key: str) -> str:
    relative = Path(task_key).relative_to(layout.DOCUMENTS)
    doc_rules, line_rules = config.document_rules, config.line_rules
    sig_sql = _signals_sql(source, relative)
    flags = [f"coalesce(({r.sql}), false) AS _r{n}" for n, r in enumerate(doc_rules)]
    reasons = [f"WHEN NOT _sig THEN {_q(NO_SIGNALS)}"] if config.rules else []
    reasons += [f"WHEN NOT _r{n} THEN {_q(r.name)}" for n, r in enumerate(doc_rules)]
    line_cols: list[str] = []
    rewrite = ""
    if line_rules:
        ref = _ident(line_rules[0].line_signals()[0])
        keep_line = " AND ".join(f"coalesce(({r.line_predicate('i')}), false)" for r in line_rules)
        line_cols = [
            f"len({ref}) AS _lines_in",
            f"list_filter(range(1, coalesce(len({ref}), 0) + 1), lambda i: {keep_line}) AS _kept",
            *(
                f"len(list_filter(range(1, coalesce(len({ref}), 0) + 1), "
                f"lambda i: NOT coalesce(({r.line_predicate('i')}), false))) AS _lf{n}"
                for n, r in enumerate(line_rules)
            ),
            f"array_to_string(list_transform(_kept, lambda i: substr(raw_content, {ref}[i].start + 1, "
            f"{ref}[i].\"end\" - {ref}[i].start)), '') AS _text",
        ]
        reasons.append(f"WHEN len(_kept) = 0 THEN {_q(LINES_EMPTY)}")
        rewrite = (
            "CASE WHEN first_failed_rule IS NULL THEN _text ELSE raw_content END AS raw_content, "
            "CASE WHEN first_failed_rule IS NULL THEN length(_text) ELSE length END AS length, "
            "CASE WHEN first_failed_rule IS NULL THEN len(_kept) ELSE nlines END AS nlines"
        )
    dup_join, dup_flags = _dedup_sql(config, source, relative)
    reasons += [f"WHEN _dup{n} THEN {_q('duplicate:' + m)}" for n, m in enumerate(config.dedup_modes)]
    names = [_q(r.name) for r in doc_rules]
    passed = (
        f"list_filter([{', '.join(names)}], lambda x, i: [{', '.join(f'_r{n}' for n in range(len(doc_rules)))}][i])"
        if doc_rules
        else "[]::VARCHAR[]"
    )
    if line_rules:  # applied to every kept document
        passed = f"list_concat({passed}, CASE WHEN len(_kept) > 0 THEN [{', '.join(_q(r.name) for r in line_rules)}] ELSE [] END)"
    case = f"CASE {' '.join(reasons)} END" if reasons else "NULL::VARCHAR"
    carried = sorted({name for r in line_rules for name in r.line_signals()})
    scored = ", ".join(
        [
            "d.*",
            *(f"s.{_ident(c)}" for c in carried),
            *flags,
            "s._has_signals IS NOT NULL AS _sig",
            *(f"{flag} AS _dup{n}" for n, flag in enumerate(dup_flags)),
            "d.file_row_number AS _row",
        ]
    )
    stage2 = ", ".join(["*", *line_cols]) if line_cols else "*"
    final_rewrite = f"* REPLACE ({rewrite})" if rewrite else "*"
    return f"""
        WITH d AS (SELECT * FROM read_parquet({_q(str(source / task_key))}, file_row_number = true)),
             s AS ({sig_sql}),
             scored AS (SELECT {scored} FROM d LEFT JOIN s USING (id) {dup_join}),
             lined AS (SELECT {stage2} FROM scored),
             judged AS (SELECT *, {passed} AS passed_rules, {case} AS first_failed_rule FROM lined)
        SELECT {final_rewrite} FROM judged ORDER BY _row
    """


@dataclass(frozen=True)
class FilterWork:
    config: FilterConfig

    def __call__(self, task: FilterTask, ctx: TaskContext) -> TaskResult:
        source = Path(self.config.source)
        relative = Path(task.key).relative_to(layout.DOCUMENTS)
        query = build_query(self.config, source, task.key)
        stats = Stats(bytes_in=task.weight)
        counts = Counts()
        con = duckdb.connect()
        con.execute(f"SET threads = {max(1, self.config.threads)}")
        schema = _output_schema(source / task.key)
        writer = PartitionedWriter(ctx.root, schema)
        kept_path = ctx.root / layout.DOCUMENTS / relative
        dropped_path = ctx.root / DROPPED / relative
        writer.open(kept_path)
        if self.config.keep_dropped:
            writer.open(dropped_path)
        try:
            with stats.timed("filter"):
                reader = con.sql(query).to_arrow_reader(self.config.batch_rows)
            for batch in reader:
                with stats.timed("filter"):
                    _count(batch, self.config, counts)
                    table = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
                    failed = table.column("first_failed_rule")
                with stats.timed("write"):
                    writer.write(kept_path, _batch(table.filter(pc.is_null(failed))))
                    if self.config.keep_dropped:
                        writer.write(dropped_path, _batch(table.filter(pc.is_valid(failed))))
                stats.docs_in += batch.num_rows
                ctx.progress(batch.num_rows)
            with stats.timed("write"):
                outputs = writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            con.close()
        counts_file = layout.stage_dir(ctx.root, STAGE) / "counts" / f"{layout.safe_name(task.key)}.json"
        atomic.write_json(counts_file, counts.as_dict())
        outputs.append(markers.write_marker(ctx.root, counts_file, counts.docs))
        stats.docs_out = counts.kept
        stats.bytes_out = sum(o.bytes for o in outputs)
        ctx.progress(0, task.weight)
        return TaskResult(outputs=outputs, stats=stats)


def _batch(table: pa.Table) -> pa.RecordBatch:
    return (
        table.combine_chunks().to_batches()[0]
        if table.num_rows
        else pa.RecordBatch.from_pylist([], schema=table.schema)
    )


def _count(batch: pa.RecordBatch, config: FilterConfig, counts: Counts) -> None:
    names = batch.schema.names
    counts.docs += batch.num_rows
    if config.rules:
        counts.failed[NO_SIGNALS] += batch.num_rows - int(pc.sum(batch.column("_sig")).as_py() or 0)
    for n, rule in enumerate(config.document_rules):
        counts.failed[rule.name] += batch.num_rows - int(pc.sum(batch.column(f"_r{n}")).as_py() or 0)
    for n, mode in enumerate(config.dedup_modes):
        counts.failed[f"duplicate:{mode}"] += int(pc.sum(batch.column(f"_dup{n}")).as_py() or 0)
    reasons = batch.column("first_failed_rule")
    counts.kept += int(pc.sum(pc.is_null(reasons)).as_py() or 0)
    for item in pc.value_counts(reasons.drop_null()).to_pylist():
        counts.first_failed[item["values"]] += item["counts"]
    if "_kept" in names:
        counts.lines_in += int(pc.sum(batch.column("_lines_in")).as_py() or 0)
        counts.lines_kept += int(pc.sum(pc.list_value_length(batch.column("_kept"))).as_py() or 0)
        counts.failed[LINES_EMPTY] += int(
            pc.sum(pc.equal(pc.list_value_length(batch.column("_kept")), 0)).as_py() or 0
        )
        for n, rule in enumerate(config.line_rules):
            counts.lines_failed[rule.name] += int(pc.sum(batch.column(f"_lf{n}")).as_py() or 0)


def _output_schema(documents_file: Path) -> pa.Schema:
    import pyarrow.parquet as pq

    base = pq.read_schema(documents_file)
    return pa.schema([*base, *PROVENANCE]).remove_metadata()


def _readable_signals(source: Path) -> list[Path]:
    # A damaged signals file fails only its own documents file's task (`_signals_sql`).
    return [f for f in parquet_files(source / SIGNALS) if markers.parquet_damage(f) is None]


def _any_signals(source: Path) -> Path | None:
    return next((f for f in parquet_files(source / SIGNALS) if markers.parquet_damage(f) is None), None)


def plan(source: Path) -> list[FilterTask]:
    tasks = []
    for path in parquet_files(source / layout.DOCUMENTS):
        tasks.append(FilterTask(key=path.relative_to(source).as_posix(), weight=path.stat().st_size))
    return tasks


def signal_warnings(config: FilterConfig) -> list[str]:
    """One line per rule that reads a signal no document has (NULL in every row: say, a
    classifier missing from the artifact bundle). Counts only the signal columns the rules name,
    over every signals file (our writers keep statistics for the id columns only)."""
    files = _readable_signals(Path(config.source))
    if not files or not config.rules:
        return []
    con = duckdb.connect()
    listed = ", ".join(_q(str(f)) for f in files)
    source = f"read_parquet([{listed}], union_by_name = true)"
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    used = {
        rule.name: [
            n
            for n in names
            if n.startswith(("rps_", "ccnet_")) and re.search(rf"\b{re.escape(n)}\b", rule.sql)
        ]
        for rule in config.rules
    }
    columns = sorted({n for found in used.values() for n in found})
    if not columns:
        return []
    counts = con.execute(
        f"SELECT {', '.join(f'count({_ident(c)})' for c in columns)} FROM {source}"
    ).fetchone()
    empty = {c for c, n in zip(columns, counts, strict=True) if n == 0}
    return [
        f"rule {rule} reads {', '.join(c for c in found if c in empty)}, which no document has: it drops "
        "every document (a model missing from the artifact bundle? `redpajama artifacts list`)"
        for rule, found in used.items()
        if any(c in empty for c in found)
    ]


def check(config: FilterConfig, tasks: list[FilterTask]) -> None:
    """Fail before any work on a rule that does not bind, a missing dedup mode or missing signals."""
    source = Path(config.source)
    modes = config.dedup_modes
    if len(modes) > 2 or (len(modes) == 2 and (modes[1] != EXACT or modes[0] == EXACT)):
        raise UserError(
            f"--dedup {', '.join(modes)}: give one mode, or exact and one fuzzy mode together",
            "two fuzzy modes would each keep their own copy of a cluster and could drop every copy",
        )
    for mode in modes:
        if not parquet_files(source / DUPLICATES / mode):
            found = sorted(p.name for p in (source / DUPLICATES).glob("*") if p.is_dir())
            raise UserError(
                f"no duplicates for --dedup {mode} under {source / DUPLICATES}",
                f"available: {', '.join(found) or 'none'}; run `redpajama dedup {source}` first",
            )
    if len(modes) == 2 and not parquet_files(source / CLUSTERS / modes[0]):
        raise UserError(
            f"--dedup {modes[0]} with exact needs the fuzzy clusters under {source / CLUSTERS / modes[0]}",
            f"run `redpajama dedup {source}` (fuzzy) again to write them",
        )
    signals = _any_signals(source)
    if config.rules and signals is None:
        raise UserError(
            f"no quality signals under {source / SIGNALS}", f"run `redpajama signals {source}` first"
        )
    if not config.rules:
        return
    con = duckdb.connect()
    first = source / tasks[0].key
    for rule in config.rules:
        predicate = rule.line_predicate("1") if rule.level == "line" else rule.sql
        try:
            con.execute(
                f"SELECT ({predicate}) FROM read_parquet({_q(str(first))}) d "
                f"LEFT JOIN read_parquet({_q(str(signals))}) s USING (id) LIMIT 0"
            )
        except duckdb.Error as exc:
            raise UserError(f"rule {rule.name}: {exc}".splitlines()[0], f"its SQL: {rule.sql}") from exc


def run(
    dest: str | os.PathLike[str], config: FilterConfig, options: RunOptions | None = None
) -> tuple[RunSummary, dict[str, Any]]:
    """Filter every documents file of `config.source` into `dest`; resumable. Returns (summary, stats)."""
    source, root = Path(config.source).resolve(), Path(dest).resolve()
    if source == root:
        raise UserError("the curated folder must differ from the source tree", "pass another -o folder")
    config = FilterConfig(**{**asdict(config), "source": str(source), "rules": tuple(config.rules)})
    tasks = plan(source)
    if not tasks:
        raise UserError(
            f"no documents under {source / layout.DOCUMENTS}", f"run `redpajama ingest ... -o {source}` first"
        )
    check(config, tasks)
    options = options or RunOptions()
    fingerprint_file = layout.stage_dir(root, STAGE) / "config.json"
    fingerprint = config.fingerprint()
    previous = json.loads(fingerprint_file.read_text("utf-8")) if fingerprint_file.exists() else {}
    if previous.get("fingerprint") != fingerprint:  # other rules: nothing finished can be reused
        options = RunOptions(**{**asdict(options), "overwrite": True})
        # Nor kept: a file the new run does not write (a dropped/ without --keep-dropped, a source
        # file since removed) would otherwise sit beside the new output.
        for folder in (root / layout.DOCUMENTS, root / DROPPED):
            shutil.rmtree(folder, ignore_errors=True)
    summary = run_tasks(
        STAGE, tasks, FilterWork(config), root, options, clean_dirs=[root / layout.DOCUMENTS, root / DROPPED]
    )
    atomic.write_json(
        fingerprint_file,
        {
            "fingerprint": fingerprint,
            "rules": [asdict(r) for r in config.rules],
            "dedup": list(config.dedup_modes),
        },
    )
    stats = _merged_stats(root, tasks, config, summary)
    stats["warnings"] = signal_warnings(config)
    atomic.write_json(layout.stage_dir(root, STAGE) / "stats.json", stats)
    return summary, stats


def _merged_stats(
    root: Path, tasks: list[FilterTask], config: FilterConfig, summary: RunSummary
) -> dict[str, Any]:
    total = Counts()
    for task in tasks:
        path = layout.stage_dir(root, STAGE) / "counts" / f"{layout.safe_name(task.key)}.json"
        if path.exists():
            data = json.loads(path.read_text("utf-8"))
            total.merge(Counts(**{k: Counter(v) if isinstance(v, dict) else v for k, v in data.items()}))
    order = [NO_SIGNALS] if config.rules else []
    order += [r.name for r in config.document_rules]
    if config.line_rules:
        order.append(LINES_EMPTY)
    order += [f"duplicate:{mode}" for mode in config.dedup_modes]
    funnel, left = [{"step": "input", "docs": total.docs}], total.docs
    for name in order:
        left -= total.first_failed.get(name, 0)
        funnel.append({"step": name, "dropped": total.first_failed.get(name, 0), "docs": left})
    return {
        **summary.as_dict(),
        "rules": [
            {
                "name": name,
                "failed": total.failed.get(name, 0),
                "dropped_first": total.first_failed.get(name, 0),
            }
            for name in order
        ],
        "funnel": funnel,
        "docs_kept": total.kept,
        "lines": (
            {"in": total.lines_in, "kept": total.lines_kept, "failed": dict(total.lines_failed)}
            if config.line_rules
            else None
        ),
        "dedup": "+".join(config.dedup_modes) or None,
        "source": config.source,
    }
