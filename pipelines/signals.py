"""Signals: documents -> quality_signals (every registered rps_* signal, one row per document).

    documents/<snapshot>/<shard>/<lang>_<bucket>.parquet
        -> quality_signals/<snapshot>/<shard>/<lang>_<bucket>.parquet

One task per documents file; rows keep the documents' order and are keyed by `id`/`id_int`.
Document-level signals are typed columns (null where RPv2 gives null); line-level signals are
`list<struct<start:int32, end:int32, score:double>>` with offsets into `raw_content`.
Each document picks its stop-word and LDNOOBW lists by its own `language` (English when unknown).
The ccnet_* signals copy the documents' CCNet columns (length, ..., bucket) where the file has
them (null otherwise); the ML signals use the fastText classifiers and DSIR counts of an artifact
bundle (`artifacts`; default: `Bundle.default()`), null where it has no model for the language.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from redpajama.artifacts.bundle import Bundle
from redpajama.errors import UserError
from redpajama.io import layout, markers
from redpajama.pipelines.per_file import complete_documents_files, documents_batches, map_batches_to_file
from redpajama.quality_signals.ccnet import FIELDS as CCNET_FIELDS
from redpajama.quality_signals.dsir_features import resolve_hash_mode
from redpajama.quality_signals.registry import SIGNALS, arrow_schema, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.schema import UNKNOWN_LANGUAGE

STAGE = "signals"
COMPONENT = "quality_signals"
_INPUT_COLUMNS = ["id", "id_int", "raw_content", "language", "source_domain"]
# Read when the documents file has them (ingest-only trees may lack some).
_FIELD_COLUMNS = tuple(CCNET_FIELDS)


@dataclass(kw_only=True)
class SignalsConfig:
    names: tuple[str, ...] | None = None  # None: every registered signal
    ut1_map: str | None = None  # a domain -> category map built by `redpajama artifacts ut1`
    buckets: tuple[str, ...] | None = None  # e.g. ("head", "middle") as RPv2; None: every file
    artifacts: str | None = None  # bundle with classifiers + DSIR counts; None: Bundle.default()
    rpv2_compat: bool = False  # require the bundle's DSIR counts to use RPv2's hashing
    batch_rows: int = 1_000

    def signal_names(self) -> tuple[str, ...]:
        if self.names is None:
            return tuple(SIGNALS)
        unknown = [n for n in self.names if n not in SIGNALS]
        if unknown:
            raise UserError(f"unknown signal(s): {', '.join(unknown)}", "see `redpajama signals --list`")
        return tuple(self.names)


@dataclass(frozen=True)
class SignalsTask:
    key: str  # the documents file relative to the output root
    weight: int


def signals_schema(names: Sequence[str]) -> pa.Schema:
    keys = pa.schema(
        [pa.field("id", pa.string(), nullable=False), pa.field("id_int", pa.uint64(), nullable=False)]
    )
    return pa.unify_schemas([keys, arrow_schema(names)])


def output_path(root: Path, documents_file: str) -> Path:
    relative = Path(documents_file).relative_to(layout.DOCUMENTS)
    return root / COMPONENT / relative


def plan(root: Path, config: SignalsConfig) -> list[SignalsTask]:
    """One task per complete documents file (its marker present), optionally by bucket."""
    return [SignalsTask(key=key, weight=size) for key, size in complete_documents_files(root, config.buckets)]


def documents_without_language(root: Path, config: SignalsConfig) -> int:
    """Documents the run reads whose language is unknown: ingest files them as `und_<bucket>`
    until CCNet assigns one. Their language-dependent signals are computed as English
    (`resources.canonical_language`), which is only right for English pages."""
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(root / task.key).metadata.num_rows
        for task in plan(root, config)
        if Path(task.key).name.startswith(f"{UNKNOWN_LANGUAGE}_")
    )


def signal_batch(
    batch: pa.RecordBatch, names: Sequence[str], resources: Resources, schema: pa.Schema
) -> pa.RecordBatch:
    """Signals of every document in `batch` (columns id, id_int, raw_content, language,
    source_domain, and any of the CCNet fields)."""
    columns: dict[str, list[Any]] = {name: [] for name in names}
    texts = batch.column("raw_content").to_pylist()
    languages = batch.column("language").to_pylist()
    domains = batch.column("source_domain").to_pylist()
    present = [c for c in _FIELD_COLUMNS if c in batch.schema.names]
    field_values = [batch.column(c).to_pylist() for c in present]
    for row, (text, language, domain) in enumerate(zip(texts, languages, domains, strict=True)):
        fields = {c: values[row] for c, values in zip(present, field_values, strict=True)}
        view = DocView(text or "", language=language, source_domain=domain, fields=fields)
        values = compute(view, resources, names)
        for name in names:
            columns[name].append(values[name])
    arrays = [batch.column("id"), batch.column("id_int")]
    for name in names:
        field = schema.field(name)
        if SIGNALS[name].level == "line":
            arrays.append(pa.array([_spans(v) for v in columns[name]], type=field.type))
        else:
            arrays.append(pa.array(columns[name], type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _spans(spans: list[tuple[int, int, Any]] | None) -> list[dict[str, Any]] | None:
    if spans is None:
        return None
    return [{"start": s, "end": e, "score": None if v is None else float(v)} for s, e, v in spans]


@dataclass(frozen=True)
class SignalsWork:
    config: SignalsConfig

    def __call__(self, task: SignalsTask, ctx: TaskContext) -> TaskResult:
        names = self.config.signal_names()
        schema = signals_schema(names)
        resources = _resources(self.config.ut1_map, self.config.artifacts, self.config.rpv2_compat)
        batches = documents_batches(
            ctx.root / task.key, _INPUT_COLUMNS, _FIELD_COLUMNS, self.config.batch_rows
        )
        return map_batches_to_file(
            ctx,
            task.weight,
            batches,
            output_path(ctx.root, task.key),
            schema,
            lambda batch: signal_batch(batch, names, resources, schema),
        )


_RESOURCES: dict[tuple[str | None, str | None, bool], Resources] = {}


def _resources(ut1_map: str | None, artifacts: str | None = None, rpv2_compat: bool = False) -> Resources:
    # Loaded once per worker process and reused by all its tasks (the UT1 map can be large).
    key = (ut1_map, artifacts, rpv2_compat)
    if key not in _RESOURCES:
        _RESOURCES[key] = Resources.load(ut1_path=ut1_map, artifacts=artifacts, rpv2_compat=rpv2_compat)
    return _RESOURCES[key]


def run(
    output: str | os.PathLike[str], config: SignalsConfig | None = None, options: RunOptions | None = None
) -> RunSummary:
    """Compute signals for every documents file under `output`; resumable."""
    config = config or SignalsConfig()
    config.signal_names()  # fail early on unknown names
    if config.ut1_map is not None and not Path(config.ut1_map).is_file():
        raise UserError(f"UT1 map {config.ut1_map} is not a file", "build one with `redpajama artifacts ut1`")
    resolve_hash_mode(Bundle.at(config.artifacts).manifest, config.rpv2_compat)  # and on a hash mismatch
    root = Path(output)
    tasks = plan(root, config)
    if not tasks:
        raise FileNotFoundError(
            f"no complete documents files under {root / layout.DOCUMENTS}; run `redpajama ingest ... -o {root}` first"
        )
    options = options or RunOptions()
    if not options.overwrite:
        check_columns(root, tasks, config)
    return run_tasks(STAGE, tasks, SignalsWork(config), root, options, clean_dirs=[root / COMPONENT])


def check_columns(root: Path, tasks: list[SignalsTask], config: SignalsConfig) -> None:
    """Refuse to call files done that hold other signals than asked for: the run would skip them
    and the signals asked for would never be written."""
    import pyarrow.parquet as pq

    wanted = signals_schema(config.signal_names()).names
    for task in tasks:
        path = output_path(root, task.key)
        if not (path.exists() and markers.read_marker(path) is not None):
            continue
        have = pq.read_schema(path).names
        if have != wanted:
            missing, extra = sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))
            raise UserError(
                f"{path} holds other signals than asked for"
                + (f" (missing {', '.join(missing)})" if missing else "")
                + (f" (not asked for: {', '.join(extra)})" if extra else ""),
                "--overwrite recomputes every file with the signals asked for now; or write to another -o",
            )
