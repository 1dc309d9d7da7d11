"""The repo's data files: `data/<lang>/train-XXXXX-of-YYYYY.parquet`, each at most `max_bytes`.

One folder per language so that every language is a `configs:` entry of its own and `all` is a glob
over the folders. Rows are re-chunked by streaming record batches: memory holds one row group, not a
shard. The compressed size of a row group is only known after writing it, so rows are cut by an
estimate (uncompressed bytes x the compression ratio seen so far, with a margin), and a shard that
still ends up too large is split in two after the fact.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.errors import UserError
from redpajama.io import markers

# The Hub convention is a `text` column; keeping `raw_content` as well would double the bytes.
RENAME = {"raw_content": "text"}
# Local paths (`source_file`), span indexes into text we rewrote (`line_ids`) and the catch-all map of
# unknown input fields (`metadata`) are of no use to a reader of the published data, and paths leak.
DROP = frozenset({"source_file", "line_ids", "metadata"})
FIRST = ("id", "text")
COMPRESSION = "zstd"
READ_BATCH_ROWS = 1024
MARGIN = 1.15


@dataclass(frozen=True)
class LayoutConfig:
    max_shard_bytes: int = 500 * 1000 * 1000
    row_group_bytes: int = 64 << 20  # uncompressed bytes buffered before a row group is written


@dataclass
class LanguageFiles:
    language: str
    files: list[Path] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class Source:
    path: Path
    snapshot: str
    language: str
    bucket: str


def find_sources(tree: Path) -> list[Source]:
    """Every `documents/<snapshot>/<shard>/<lang>_<bucket>.parquet` of an output tree, sorted."""
    root = tree / "documents"
    if not root.is_dir():
        raise UserError(
            f"{tree} has no documents/ folder", "pass the folder written by `redpajama ingest` or `filter`"
        )
    sources = []
    for path in sorted(root.rglob("*.parquet")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # temp files and markers of unfinished writes
        language, _, bucket = path.stem.rpartition("_")
        rel = path.relative_to(root).parts
        sources.append(Source(path, rel[0] if len(rel) > 2 else "unknown", language or path.stem, bucket))
    if not sources:
        raise UserError(f"no Parquet files under {root}", "run `redpajama ingest` first")
    # A dataset goes out whole or not at all: name the damaged files before writing anything.
    markers.check_intact(
        (s.path for s in sources),
        "documents file",
        "rerun the stage that wrote it (it redoes damaged files), then publish",
    )
    return sources


def _rename(schema: pa.Schema) -> pa.Schema:
    fields = [
        pa.field(RENAME.get(f.name, f.name), f.type, nullable=True) for f in schema if f.name not in DROP
    ]
    order = {name: i for i, name in enumerate(FIRST)}
    fields.sort(key=lambda f: order.get(f.name, len(FIRST)))  # stable: the rest keep their order
    return pa.schema(fields)


def output_schema(sources: list[Source]) -> pa.Schema:
    schemas = [_rename(pq.read_schema(s.path)) for s in sources]
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    # Large strings would make `datasets` features differ from file to file for no gain.
    return pa.schema(
        [
            pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type, nullable=True)
            for f in unified
        ]
    )


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    names = [RENAME.get(n, n) for n in batch.schema.names]
    batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
    columns = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _batches(sources: list[Source], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for source in sources:
        parquet = pq.ParquetFile(source.path)
        wanted = [n for n in parquet.schema_arrow.names if n not in DROP]
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=wanted):
            if batch.num_rows:
                yield _conform(batch, schema)


def _writer(path: Path, schema: pa.Schema) -> tuple[pa.OSFile, pq.ParquetWriter]:
    sink = pa.OSFile(str(path), "wb")
    # Content-defined pages keep unchanged rows byte-identical across re-publishes, which the Hub's
    # Xet storage deduplicates: a second upload of a slightly changed dataset sends little.
    writer = pq.ParquetWriter(sink, schema, compression=COMPRESSION, use_content_defined_chunking=True)
    return sink, writer


class ShardWriter:
    """Writes rows of one language into numbered shards of at most `max_shard_bytes`."""

    def __init__(self, folder: Path, schema: pa.Schema, config: LayoutConfig) -> None:
        self.folder = folder
        self.schema = schema
        self.config = config
        self.ratio = 1.0  # compressed / uncompressed; zstd on text never does worse than this
        self.parts: list[Path] = []
        self.rows = 0
        self._sink: pa.OSFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_raw = 0  # uncompressed bytes already written to the open file
        self._pending: list[pa.RecordBatch] = []
        self._pending_raw = 0

    def _estimate(self) -> float:
        written = self._sink.tell() if self._sink is not None else 0
        return written + self._pending_raw * self.ratio * MARGIN

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            per_row = max(batch.nbytes / batch.num_rows, 1.0) * self.ratio * MARGIN
            room = self.config.max_shard_bytes - self._estimate()
            take = min(batch.num_rows, int(room // per_row))
            if take <= 0:
                if self._file_rows + sum(b.num_rows for b in self._pending) == 0:
                    take = 1  # a row larger than a shard still has to go somewhere
                else:
                    self._close()
                    continue
            piece, batch = batch.slice(0, take), batch.slice(take)
            self._pending.append(piece)
            self._pending_raw += piece.nbytes
            if self._pending_raw >= self.config.row_group_bytes:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            path = self.folder / f".part-{len(self.parts):05d}.parquet"
            self.parts.append(path)
            self._sink, self._writer = _writer(path, self.schema)
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._file_rows += table.num_rows
        self._file_raw += self._pending_raw
        self.rows += table.num_rows
        self._pending, self._pending_raw = [], 0
        if self._file_raw:
            self.ratio = max(self._sink.tell() / self._file_raw, 0.01)

    def _close(self) -> None:
        self._flush()
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        self._writer = self._sink = None
        self._file_rows = self._file_raw = 0
        path = self.parts[-1]
        if path.stat().st_size > self.config.max_shard_bytes and pq.ParquetFile(path).metadata.num_rows > 1:
            self._split(path)

    def _split(self, path: Path) -> None:
        # Rare (the estimate was off): the file is about one shard, so reading it back is bounded.
        table = pq.read_table(path)
        self.parts.pop()
        path.unlink()
        half = table.num_rows // 2
        for piece in (table.slice(0, half), table.slice(half)):
            target = self.folder / f".part-{len(self.parts):05d}.parquet"
            self.parts.append(target)
            sink, writer = _writer(target, self.schema)
            writer.write_table(piece, row_group_size=max(piece.num_rows, 1))
            writer.close()
            sink.close()
            if target.stat().st_size > self.config.max_shard_bytes and piece.num_rows > 1:
                self._split(target)

    def finish(self) -> list[Path]:
        """Close the last shard and give every shard its final `train-XXXXX-of-YYYYY` name."""
        self._close()
        total = len(self.parts)
        final = []
        for index, temp in enumerate(self.parts):
            target = self.folder / f"train-{index:05d}-of-{total:05d}.parquet"
            os.replace(temp, target)
            final.append(target)
        return final


def write_data(sources: list[Source], out: Path, config: LayoutConfig) -> list[LanguageFiles]:
    """Write `out/data/<lang>/train-*.parquet` for every language of `sources`."""
    schema = output_schema(sources)
    result = []
    for language in sorted({s.language for s in sources}):
        folder = out / "data" / language
        folder.mkdir(parents=True, exist_ok=True)
        writer = ShardWriter(folder, schema, config)
        for batch in _batches([s for s in sources if s.language == language], schema):
            writer.write(batch)
        files = writer.finish()
        if files:
            result.append(LanguageFiles(language, files, writer.rows))
        else:
            folder.rmdir()
    if not result:
        raise UserError("the documents hold no rows: nothing to publish")
    return result
