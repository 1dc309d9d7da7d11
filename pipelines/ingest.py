"""Ingest: raw inputs -> documents (Parquet, RPv2 tree).

    read (a reader per format) -> records -> Arrow batches in DOCUMENT_SCHEMA -> route each row to
    documents/<snapshot>/<shard>/<lang>_<bucket>.parquet

One task per input file. The shard is the input's RPv2 shard when the path is laid out as RPv2's
(`.../2023-14/0000/en_head.json.gz`; snapshot, language and bucket then come from the path and
ids are RPv2's exact ids), and otherwise the file's name (made unique among the inputs).

Where a value is unknown the tree uses `unknown` (snapshot), `und` (language) and `all`
(bucket); the ccnet stage later assigns real languages and buckets.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redpajama import ids, schema
from redpajama.errors import UserError
from redpajama.io import atomic, layout, markers, parquet_writer
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.io.readers import detect_format, expand_inputs, read_file
from redpajama.io.readers.base import RawDoc, ReadOptions, RecordError
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

STAGE = "ingest"
SIGNALS_COMPONENT = "quality_signals"
#: Written by the ccnet stage into a shard folder it has rewritten (pipelines/ccnet/swap.py).
CCNET_SHARD_MARKER = ".ccnet.json"
#: Bad records kept per task in its errors file; the rest are only counted (bounded memory).
MAX_LOGGED_ERRORS = 10_000

# RPv2's tree: <snapshot>/<shard>/<lang>_<bucket>.json.gz (documents) or .signals.json.gz.
_RPV2_PATH = re.compile(
    r"(?:^|/)(?P<snapshot>\d{4}-\d{2})/(?P<shard>[^/]+)/(?P<lang>[A-Za-z-]+)_(?P<bucket>[A-Za-z]+)"
    r"(?P<signals>\.signals)?\.json(?:l)?(?:\.gz|\.zst)?$"
)
_CC_SNAPSHOT = re.compile(r"CC-MAIN-(\d{4}-\d{2})")
#: Released RPv2 quality-signals files: loaded into quality_signals/, not documents/.
RPV2_SIGNALS_FORMAT = "rpv2_signals"
_KNOWN_SUFFIXES = {
    ".gz",
    ".zst",
    ".zstd",
    ".bz2",
    ".jsonl",
    ".json",
    ".warc",
    ".wet",
    ".txt",
    ".parquet",
    ".arc",
    ".md",
}

_INT_FIELDS = {"length", "nlines", "original_nlines", "original_length"}
_FLOAT_FIELDS = {"language_score", "perplexity"}
_STR_FIELDS = {
    "id", "url", "date_download", "digest", "source_domain", "title", "raw_content",
    "cc_segment", "language", "bucket", "snapshot_id",
}  # fmt: skip


@dataclass(kw_only=True)
class IngestConfig:
    read: ReadOptions = field(default_factory=ReadOptions)
    input_format: str | None = None  # None: detect from each file name
    snapshot: str | None = None  # snapshot for inputs that do not name one
    batch_rows: int = 1_000
    batch_bytes: int = 32 << 20


@dataclass(frozen=True)
class IngestTask:
    key: str
    weight: int
    source_file: str
    format: str
    shard: str
    snapshot: str | None = None  # fixed by an RPv2 path
    lang: str | None = None
    bucket: str | None = None
    uri_id: str | None = None  # RPv2 id prefix


def _stem(path: str) -> str:
    name = PurePath(path).name
    while (suffix := PurePath(name).suffix.lower()) in _KNOWN_SUFFIXES:
        name = name[: -len(suffix)]
    return name or PurePath(path).name


def plan(inputs: list[str], config: IngestConfig) -> list[IngestTask]:
    """One task per input file; shard names unique among the inputs and stable across runs."""
    rpv2: list[IngestTask] = []
    others: list[tuple[str, str]] = []  # (path, format)
    for path in inputs:
        match = _RPV2_PATH.search(path.replace(os.sep, "/"))
        fmt = (
            RPV2_SIGNALS_FORMAT if match and match["signals"] else config.input_format or detect_format(path)
        )
        if match and fmt in ("jsonl", RPV2_SIGNALS_FORMAT):
            uri_id = ids.rpv2_uri_id(path)
            rpv2.append(
                IngestTask(
                    key=uri_id or path,
                    weight=_size(path),
                    source_file=path,
                    format=fmt,
                    shard=layout.safe_name(match["shard"]),
                    snapshot=match["snapshot"],
                    lang=layout.safe_name(match["lang"]),
                    bucket=layout.safe_name(match["bucket"]),
                    uri_id=uri_id if fmt == "jsonl" else None,
                )
            )
        else:
            others.append((path, fmt))
    by_stem: dict[str, list[str]] = {}
    for path, _ in others:
        by_stem.setdefault(_stem(path), []).append(os.path.abspath(path))
    tasks = list(rpv2)
    used: set[str] = set()
    for path, fmt in others:
        stem = _stem(path)
        clash = by_stem[stem]
        if len(clash) > 1:  # same name in several folders, or WARC and WET of one crawl file
            stem = os.path.relpath(
                os.path.abspath(path), os.path.commonpath([os.path.dirname(c) for c in clash])
            )
        shard = base = layout.safe_name(stem)
        suffix = 1
        while shard in used:  # two paths that render to the same safe name
            suffix += 1
            shard = f"{base}-{suffix}"
        used.add(shard)
        tasks.append(IngestTask(key=shard, weight=_size(path), source_file=path, format=fmt, shard=shard))
    return tasks


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    return os.path.getsize(path)


# --- records -> Arrow --------------------------------------------------------------------


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _INT_FIELDS:
        if isinstance(value, bool):
            raise TypeError
        return int(value)
    if name in _FLOAT_FIELDS:
        return float(value)
    if name == "line_ids":
        return [int(v) for v in value]
    if name == "id_int":
        number = int(value)
        if not 0 <= number < 1 << 64:
            raise ValueError
        return number
    if name in _STR_FIELDS:
        return value if isinstance(value, str) else str(value)
    return value


def _metadata_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


class BatchBuilder:
    """Turns reader records into DOCUMENT_SCHEMA batches for one task."""

    def __init__(self, task: IngestTask, config: IngestConfig) -> None:
        self.task = task
        self.config = config
        self.path_snapshot = task.snapshot
        if self.path_snapshot is None and (m := _CC_SNAPSHOT.search(task.source_file)):
            self.path_snapshot = m.group(1)
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.FIELD_NAMES}
        self.rows = 0
        self.text_bytes = 0

    def add(self, doc: RawDoc, on_error: Any) -> None:
        values: dict[str, Any] = {}
        metadata: dict[str, str] = {}
        for name, value in doc.fields.items():
            if name in schema.INPUT_FIELDS:
                try:
                    values[name] = _coerce(name, value)
                except (TypeError, ValueError, OverflowError):
                    metadata[name] = _metadata_value(value)
                    on_error(
                        RecordError(
                            kind="field_type",
                            source_file=self.task.source_file,
                            index=doc.index,
                            offset=doc.offset,
                            message=f"field {name!r} has an unusable value {str(value)[:80]!r}; "
                            "kept in metadata",
                        ),
                        keeps_doc=True,
                    )
            elif value is not None:
                metadata[name] = _metadata_value(value)
        text = values.get("raw_content") or ""
        values["raw_content"] = text
        doc_id = values.get("id")
        if doc_id is None:
            doc_id = (
                ids.rpv2_doc_id(self.task.uri_id, doc.index)
                if self.task.uri_id
                else ids.local_doc_id(self.task.shard, doc.index)
            )
            values["id"] = doc_id
        if values.get("id_int") is None:
            values["id_int"] = ids.id_int_of(doc_id)
        if values.get("length") is None:
            values["length"] = len(text)
        if values.get("nlines") is None:
            values["nlines"] = text.count("\n") + 1 if text else 0
        if values.get("source_domain") is None and values.get("url"):
            values["source_domain"] = urlparse(values["url"]).netloc
        values["snapshot_id"] = self._snapshot(values)
        if self.task.lang is not None and values.get("language") is None:
            values["language"] = self.task.lang
        if self.task.bucket is not None and values.get("bucket") is None:
            values["bucket"] = self.task.bucket
        values["source_file"] = self.task.source_file
        values["metadata"] = sorted(metadata.items()) if metadata else None
        for name in schema.FIELD_NAMES:
            self.columns[name].append(values.get(name))
        self.rows += 1
        self.text_bytes += len(text)

    def _snapshot(self, values: dict[str, Any]) -> str:
        if self.task.snapshot:
            return self.task.snapshot
        if values.get("snapshot_id"):
            return values["snapshot_id"]
        if (segment := values.get("cc_segment")) and (m := _CC_SNAPSHOT.search(segment)):
            return m.group(1)
        return self.path_snapshot or self.config.snapshot or schema.UNKNOWN_SNAPSHOT

    @property
    def full(self) -> bool:
        return self.rows >= self.config.batch_rows or self.text_bytes >= self.config.batch_bytes

    def take(self) -> pa.RecordBatch:
        batch = pa.RecordBatch.from_pydict(self.columns, schema=schema.DOCUMENT_SCHEMA)
        self.columns = {name: [] for name in schema.FIELD_NAMES}
        self.rows = 0
        self.text_bytes = 0
        return batch


def document_batches(
    task: IngestTask, config: IngestConfig, stats: Stats, errors: list[dict[str, Any]]
) -> Iterator[pa.RecordBatch]:
    """Read one input file and yield its documents as DOCUMENT_SCHEMA batches."""
    builder = BatchBuilder(task, config)

    def on_error(error: RecordError, keeps_doc: bool = False) -> None:
        # One error can stand for several records lost together (a Parquet row group).
        lost = getattr(error, "count", 1)
        stats.errors[error.kind] += lost
        if not keeps_doc and error.index is not None:
            stats.docs_in += lost
        if len(errors) < MAX_LOGGED_ERRORS:
            errors.append(error.as_dict())

    for item in read_file(task.source_file, config.read, format=task.format):
        if isinstance(item, RecordError):
            on_error(item)
            continue
        stats.docs_in += 1
        builder.add(item, on_error)
        if builder.full:
            yield builder.take()
    if builder.rows:
        yield builder.take()


def destinations(
    task: IngestTask, batch: pa.RecordBatch, root: Path
) -> Iterator[tuple[Path, pa.RecordBatch]]:
    """Split a batch by output file: documents/<snapshot>/<shard>/<lang>_<bucket>.parquet."""
    snapshot = pc.fill_null(batch.column("snapshot_id"), schema.UNKNOWN_SNAPSHOT)
    lang = pc.fill_null(batch.column("language"), schema.UNKNOWN_LANGUAGE)
    bucket = pc.fill_null(batch.column("bucket"), schema.UNKNOWN_BUCKET)
    if task.lang is not None:
        lang = pa.array([task.lang] * batch.num_rows, pa.string())
        bucket = pa.array([task.bucket] * batch.num_rows, pa.string())
    keys = pc.binary_join_element_wise(snapshot, lang, bucket, "\x00")
    for key in sorted(pc.unique(keys).to_pylist()):
        snap, lng, bkt = key.split("\x00")
        part = batch.filter(pc.equal(keys, key))
        path = layout.data_file(
            root,
            layout.DOCUMENTS,
            layout.safe_name(snap),
            task.shard,
            layout.safe_name(lng),
            layout.safe_name(bkt),
        )
        yield path, part


@dataclass(frozen=True)
class IngestWork:
    """The picklable task function the runner calls in a worker process."""

    config: IngestConfig

    def __call__(self, task: IngestTask, ctx: TaskContext) -> TaskResult:
        if task.format == RPV2_SIGNALS_FORMAT:
            return ingest_rpv2_signals(task, ctx)
        stats = Stats(bytes_in=task.weight)
        errors: list[dict[str, Any]] = []
        writer = PartitionedWriter(ctx.root, schema.DOCUMENT_SCHEMA)
        try:
            started = time.perf_counter()
            write_seconds = 0.0
            for batch in document_batches(task, self.config, stats, errors):
                t0 = time.perf_counter()
                for path, part in destinations(task, batch, ctx.root):
                    writer.write(path, part)
                write_seconds += time.perf_counter() - t0
                ctx.progress(batch.num_rows)
            t0 = time.perf_counter()
            outputs = writer.commit()
            write_seconds += time.perf_counter() - t0
        except BaseException:
            writer.abort()
            raise
        ctx.progress(0, task.weight)
        stats.docs_out = sum(o.rows for o in outputs)
        stats.bytes_out = sum(o.bytes for o in outputs)
        stats.seconds["read"] += time.perf_counter() - started - write_seconds
        stats.seconds["write"] += write_seconds
        return TaskResult(outputs=outputs, stats=stats, errors=errors)


def run(
    inputs: list[str],
    output: str | os.PathLike[str],
    config: IngestConfig | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Ingest `inputs` (files, folders, globs) into `output`; resumable. The Python entry point."""
    config = config or IngestConfig()
    options = options or RunOptions()
    root = Path(output)
    tasks = plan(expand_inputs(inputs, any_suffix=config.input_format is not None), config)
    rewritten = [t for t in tasks if _rewritten_by_ccnet(root, t)]
    if rewritten and options.overwrite:
        raise UserError(
            f"{len(rewritten)} shard(s) under {root} were rewritten by `redpajama ccnet` (e.g. {rewritten[0].key})",
            "ingest into a new output folder instead of overwriting them",
        )
    return run_tasks(
        STAGE,
        tasks,
        IngestWork(config),
        root,
        options,
        clean_dirs=[root / layout.DOCUMENTS, *_signals_dirs(root, tasks)],
        superseded=lambda task: _rewritten_by_ccnet(root, task),
    )


def _signals_dirs(root: Path, tasks: list[IngestTask]) -> list[Path]:
    """The quality_signals/ shard folders this run writes: where a killed run left temp files.

    Only these, not all of quality_signals/, which the signals stage writes too."""
    return sorted(
        {
            layout.data_file(root, SIGNALS_COMPONENT, t.snapshot, t.shard, t.lang, t.bucket).parent
            for t in tasks
            if t.format == RPV2_SIGNALS_FORMAT and t.snapshot and t.lang and t.bucket
        }
    )


def _rewritten_by_ccnet(root: Path, task: IngestTask) -> bool:
    """The task finished once and ccnet has since replaced its shard folder(s) in place."""
    marker = layout.task_marker(root, STAGE, task.key)
    try:
        outputs = json.loads(marker.read_text("utf-8"))["outputs"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False
    return bool(outputs) and all(
        (root / o["path"]).parent.joinpath(CCNET_SHARD_MARKER).exists() for o in outputs
    )


# --- released RPv2 quality signals -------------------------------------------------------


def _signals_schema(names: list[str], types: dict[str, pa.DataType]) -> pa.Schema:
    """id, id_int, the registered signals among `names` (registry order), then the others (in
    the order given: first seen)."""
    from redpajama.quality_signals.registry import SIGNALS

    present = set(names)
    known = [n for n in SIGNALS if n in present]
    others = [n for n in names if n not in SIGNALS and n not in ("id", "id_int")]
    keys = [pa.field("id", pa.string(), nullable=False), pa.field("id_int", pa.uint64(), nullable=False)]
    return pa.schema(keys + [pa.field(n, types[n]) for n in known + others])


def _conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    columns = [
        batch.column(f.name).cast(f.type)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, f.type)
        for f in target
    ]
    return pa.RecordBatch.from_arrays(columns, schema=target)


class _SignalsFile:
    """One quality_signals Parquet file whose columns are every signal seen in its input.

    Written like `PartitionedWriter` writes (hidden temp file, same compression, a row group per
    `ROW_GROUP_ROWS` rows or `ROW_GROUP_BYTES` bytes, rename and marker on commit). When a batch
    brings a column not seen before, the schema widens: batches not yet written are conformed,
    and row groups already in the temp file are copied, group by group, into a new temp file
    with the wider schema (older rows get nulls). This is rare (RPv2 files name every signal on
    every line) and costs one rewrite per new column; the result depends only on the input.
    """

    ROW_GROUP_ROWS = 10_000
    ROW_GROUP_BYTES = 64 << 20

    def __init__(self, root: Path, destination: Path) -> None:
        self.root = root
        self.destination = destination
        self.temp = atomic.temp_path_for(destination)
        self.names: list[str] = []
        self.types: dict[str, pa.DataType] = {}
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.pending_bytes = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        new = [f for f in batch.schema if f.name not in self.types]
        if new or self.schema is None:
            for f in new:
                self.names.append(f.name)
                self.types[f.name] = f.type
            self._widen(_signals_schema(self.names, self.types))
        assert self.schema is not None
        batch = _conform(batch, self.schema)
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.pending_bytes += batch.nbytes
        if self.pending_rows >= self.ROW_GROUP_ROWS or self.pending_bytes >= self.ROW_GROUP_BYTES:
            self._flush()

    def _open_writer(self, schema: pa.Schema) -> pq.ParquetWriter:
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        return pq.ParquetWriter(
            self.temp,
            schema,
            compression=parquet_writer.COMPRESSION,
            compression_level=parquet_writer.COMPRESSION_LEVEL,
            write_statistics=["id", "id_int"],
        )

    def _widen(self, schema: pa.Schema) -> None:
        if self.schema is not None and schema.equals(self.schema):
            return
        self.schema = schema
        self.pending = [_conform(b, schema) for b in self.pending]
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        previous = self.temp.with_name(self.temp.name + "-narrow")  # still a temp name
        os.replace(self.temp, previous)
        try:
            writer = self.writer = self._open_writer(schema)
            with pq.ParquetFile(previous) as narrow:
                for group in range(narrow.num_row_groups):
                    table = narrow.read_row_group(group)
                    wide = pa.Table.from_batches(
                        [_conform(b, schema) for b in table.to_batches()], schema=schema
                    )
                    writer.write_table(wide, row_group_size=max(wide.num_rows, 1))
        finally:
            previous.unlink()

    def _flush(self) -> None:
        if not self.pending:
            return
        assert self.schema is not None
        if self.writer is None:
            self.writer = self._open_writer(self.schema)
        table = pa.Table.from_batches(self.pending, schema=self.schema)
        self.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def commit(self) -> list[markers.OutputMarker]:
        if self.schema is None:
            return []
        self._flush()
        if self.writer is None:  # every batch was empty
            self.writer = self._open_writer(self.schema)
        self.writer.close()
        self.writer = None
        atomic.commit(self.temp, self.destination)
        return [markers.write_marker(self.root, self.destination, self.rows)]

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def ingest_rpv2_signals(task: IngestTask, ctx: TaskContext) -> TaskResult:
    """An RPv2 `<lang>_<bucket>.signals.json.gz` -> quality_signals/<snapshot>/<shard>/<lang>_<bucket>.parquet.

    The file's columns are id, id_int and every signal any of its lines has: the registered
    (RPv2) signals in registry order, then unknown names in the order first seen, kept as
    line-level spans (lossless). A fixed RPv2 schema with unknown names as errors was the
    alternative; the columns seen are kept because this reader promises to lose nothing, a
    file with a subset of the signals (an export of `redpajama signals --names ...`) then reads
    back with the schema it was written from, and a signal the file lacks stays distinguishable
    from a null score (queries over several files already union columns by name).
    """
    from redpajama.io import rpv2_signals
    from redpajama.quality_signals.registry import SIGNALS

    stats = Stats(bytes_in=task.weight)
    errors: list[dict[str, Any]] = []
    destination = layout.data_file(
        ctx.root, SIGNALS_COMPONENT, task.snapshot, task.shard, task.lang, task.bucket
    )
    levels = {name: signal.level for name, signal in SIGNALS.items()}
    dtypes = {name: signal.dtype for name, signal in SIGNALS.items()}
    output = _SignalsFile(ctx.root, destination)
    try:
        for item in rpv2_signals.read_json_gz(task.source_file, levels, dtypes):
            if isinstance(item, RecordError):
                stats.errors[item.kind] += 1
                stats.docs_in += 1
                if len(errors) < MAX_LOGGED_ERRORS:
                    errors.append(item.as_dict())
                continue
            output.write(item)
            stats.docs_in += item.num_rows
            ctx.progress(item.num_rows)
        outputs = output.commit()
    except BaseException:
        output.abort()
        raise
    stats.docs_out = sum(o.rows for o in outputs)
    stats.bytes_out = sum(o.bytes for o in outputs)
    ctx.progress(0, task.weight)
    return TaskResult(outputs=outputs, stats=stats, errors=errors)
