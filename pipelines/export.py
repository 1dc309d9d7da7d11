"""Export: our output tree -> RedPajama-V2's own file formats.

    documents/<s>/<shard>/<lang>_<bucket>.parquet        -> <dest>/documents/<s>/<shard>/<lang>_<bucket>.json.gz
    quality_signals/<s>/<shard>/<lang>_<bucket>.parquet  -> <dest>/quality_signals/<s>/<shard>/<lang>_<bucket>.signals.json.gz

so tools written for the released RPv2 files read ours unchanged. Documents keep RPv2's 16
fields (`InputSpec`); signals files are line-aligned with their documents files, as RPv2's are,
and their ids are RPv2's for the exported file: `<snapshot>/<shard>/<lang>_<bucket>.json.gz/<line>`.
Files are gzip with mtime 0, so an export is byte-identical when rerun; a rerun to the same
destination skips the files that are still current (`_is_current`).
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io import atomic, layout, markers, rpv2_signals
from redpajama.quality_signals.registry import RPV2_RECORD_ORDER, SIGNALS
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks, task_record
from redpajama.runners.stats import Stats

STAGE = "export"
SIGNALS_COMPONENT = "quality_signals"
RPV2_DOCUMENT_FIELDS = (
    "url", "date_download", "digest", "length", "nlines", "source_domain", "title", "raw_content",
    "cc_segment", "original_nlines", "original_length", "line_ids", "language", "language_score",
    "perplexity", "bucket",
)  # fmt: skip
_SIGNAL_DOC_COLUMNS = ("id", "raw_content", *rpv2_signals.METADATA_KEYS)
_CHUNK_ROWS = 2_000


@dataclass(frozen=True)
class ExportTask:
    key: str  # documents file relative to the root
    weight: int
    dest: str  # absolute
    source: str  # the SHA-256s of the documents file and its signals file ('' if none), from their markers


def int_score_signals() -> set[str]:
    """Signals whose RPv2 scores are integers (a JSON `2`, not `2.0`)."""
    return {name for name, sig in SIGNALS.items() if sig.int_scores}


def chunks(path: Path, columns: Sequence[str] | None, rows: int = _CHUNK_ROWS) -> Iterator[pa.Table]:
    """Consecutive `rows`-row tables of a Parquet file, whatever its row groups, so two files
    with the same rows can be walked side by side."""
    parquet = pq.ParquetFile(path)
    present = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
    buffer: list[pa.RecordBatch] = []
    have = 0
    for batch in parquet.iter_batches(batch_size=rows, columns=present):
        buffer.append(batch)
        have += batch.num_rows
        while have >= rows:
            table = pa.Table.from_batches(buffer).combine_chunks()
            yield table.slice(0, rows)
            rest = table.slice(rows)
            buffer, have = rest.to_batches(), rest.num_rows
    if have:
        yield pa.Table.from_batches(buffer)


@contextlib.contextmanager
def gzip_lines(final: Path) -> Iterator[gzip.GzipFile]:
    with (
        atomic.atomic_path(final) as temp,
        open(temp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out,  # no temp name in the header
    ):
        yield out


def export_documents(source: Path, final: Path) -> int:
    rows = 0
    with gzip_lines(final) as out:
        for table in chunks(source, RPV2_DOCUMENT_FIELDS):
            for record in table.to_pylist():
                out.write(orjson.dumps(record) + b"\n")
            rows += table.num_rows
    return rows


def export_signals(signals: Path, documents: Path, final: Path, cc_net_source: str) -> int:
    rows = 0
    int_scores = int_score_signals()
    with gzip_lines(final) as out:
        pairs = zip(chunks(signals, None), chunks(documents, _SIGNAL_DOC_COLUMNS), strict=True)
        for signal_table, document_table in pairs:
            lines = rpv2_signals.to_json_lines(
                signal_table, document_table, cc_net_source, int_scores, rows, RPV2_RECORD_ORDER
            )
            for line in lines:
                out.write(line)
            rows += signal_table.num_rows
    return rows


@dataclass(frozen=True)
class ExportWork:
    def __call__(self, task: ExportTask, ctx: TaskContext) -> TaskResult:
        relative = Path(task.key).relative_to(layout.DOCUMENTS)
        dest = Path(task.dest)
        documents = ctx.root / task.key
        stats = Stats(bytes_in=task.weight)
        written = [dest / layout.DOCUMENTS / relative.with_suffix(".json.gz")]
        stats.docs_in = stats.docs_out = export_documents(documents, written[0])
        signals = ctx.root / SIGNALS_COMPONENT / relative
        if markers.read_marker(signals) is not None:
            written.append(dest / SIGNALS_COMPONENT / relative.parent / f"{relative.stem}.signals.json.gz")
            export_signals(signals, documents, written[-1], relative.with_suffix(".json.gz").as_posix())
        sizes = {p.relative_to(dest).as_posix(): p.stat().st_size for p in written}
        stats.bytes_out = sum(sizes.values())
        ctx.progress(stats.docs_out, task.weight)
        # The exported files sit outside this tree: the task marker records where they went, what
        # they were made from and their sizes, so that a rerun can tell whether they are current.
        return TaskResult(
            outputs=[], stats=stats, extra={"dest": task.dest, "source": task.source, "files": sizes}
        )


def _fingerprint(root: Path, documents: Path) -> str:
    signals = root / SIGNALS_COMPONENT / documents.relative_to(root / layout.DOCUMENTS)
    marks = [markers.read_marker(documents), markers.read_marker(signals)]
    return " ".join(m.sha256 if m is not None else "" for m in marks)


def _is_current(root: Path, task: ExportTask) -> bool:
    """Whether a finished task's files are at this destination, made from these inputs and whole."""
    record = task_record(root, STAGE, task.key)
    extra = (record or {}).get("extra") or {}
    if extra.get("dest") != task.dest or extra.get("source") != task.source or not extra.get("files"):
        return False
    dest = Path(task.dest)
    for rel, size in extra["files"].items():
        try:
            if (dest / rel).stat().st_size != size:
                return False
        except FileNotFoundError:
            return False
    return True


def run(
    output: str | os.PathLike[str],
    dest: str | os.PathLike[str] | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Write RPv2-format copies of the documents (and their signals, where computed) under `dest`."""
    root = Path(output)
    dest_path = (Path(dest) if dest is not None else root / "export" / "rpv2").resolve()
    tasks = [
        ExportTask(
            key=p.relative_to(root).as_posix(),
            weight=p.stat().st_size,
            dest=str(dest_path),
            source=_fingerprint(root, p),
        )
        for p in sorted((root / layout.DOCUMENTS).rglob("*.parquet"))
        if not p.name.startswith(".") and markers.read_marker(p) is not None
    ]
    if not tasks:
        raise FileNotFoundError(f"no complete documents files under {root / layout.DOCUMENTS}")
    options = options or RunOptions()
    # A finished task is skipped only where its files are still at this destination and were made
    # from the documents and signals as they are now (another --dest, a rerun stage upstream, or a
    # deleted or truncated export file make it run again).
    for task in tasks:
        if not options.overwrite and not _is_current(root, task):
            layout.task_marker(root, STAGE, task.key).unlink(missing_ok=True)
    return run_tasks(STAGE, tasks, ExportWork(), root, options, clean_dirs=[dest_path])
