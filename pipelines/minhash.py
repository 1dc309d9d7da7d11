"""MinHash: documents -> minhash (banded signatures per similarity threshold, one row per document).

    documents/<snapshot>/<shard>/<lang>_<bucket>.parquet
        -> minhash/<snapshot>/<shard>/<lang>_<bucket>.parquet

Rows keep the documents' order: `shard_id` (RPv2's `<snapshot>/<shard>/<lang>_<bucket>.json.gz`),
`id`, `id_int`, then per threshold t a column `signature_sim{t}` (t as RPv2 prints it: 1.0, 0.9,
0.8, 0.7), `list<binary>` with one element per band = the band's r uint32 values big-endian
(4*r bytes), null when the document has fewer normalized words than the n-gram size. Bands and
rows per threshold come from datasketch's `optimal_param` (0.7 -> 14x9, 0.8 -> 9x13, 0.9 -> 5x25,
1.0 -> 1x128 at 128 permutations); an explicit (bands, rows) gives `signature_b{B}_r{R}`.
The defaults reproduce RPv2's `*.minhash.parquet` bit for bit (see `minhash_hashing`).

The stage parameters are stored in each file's key-value metadata under `redpajama.minhash`
(JSON: num_perm, seed, ngram, shingle, hash, and bands/rows per column) for the dedup stage.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.errors import UserError
from redpajama.io import layout, markers
from redpajama.pipelines.minhash_hashing import (
    HashName,
    ShingleKind,
    band_bytes,
    char_shingles,
    permutation_checksum,
    signatures,
    word_shingles,
)
from redpajama.pipelines.per_file import complete_documents_files, documents_batches, map_batches_to_file
from redpajama.quality_signals.view import DocView
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks

STAGE = "minhash"
COMPONENT = "minhash"
METADATA_KEY = b"redpajama.minhash"
RPV2_THRESHOLDS = (1.0, 0.9, 0.8, 0.7)
_INPUT_COLUMNS = ["id", "id_int", "raw_content"]


@functools.cache
def optimal_param(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising 0.5 * false-positive + 0.5 * false-negative area.

    The same loops and `scipy.integrate.quad` calls as datasketch's `_optimal_param` (and RPv2's
    copy of it), so ties and rounding resolve identically."""
    from scipy.integrate import quad

    def false_positive(b: int, r: int) -> float:
        return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]

    def false_negative(b: int, r: int) -> float:
        return quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0]

    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, int(num_perm / b) + 1):
            error = false_positive(b, r) * 0.5 + false_negative(b, r) * 0.5
            if error < best:
                best, opt = error, (b, r)
    return opt


@dataclass(kw_only=True)
class MinHashConfig:
    thresholds: tuple[float, ...] = RPV2_THRESHOLDS
    bands_rows: tuple[tuple[int, int], ...] = ()  # explicit (bands, rows) pairs, extra columns
    num_perm: int = 128
    ngram: int = 13
    shingle: ShingleKind = "word"
    hash: HashName = "sha1"  # sha1: RPv2 bit-exact; fast: vectorised, not RPv2-compatible
    seed: int = 42
    buckets: tuple[str, ...] | None = None  # e.g. ("head", "middle") as RPv2; None: every file
    batch_rows: int = 1_000

    def validate(self) -> None:
        if self.num_perm < 1 or self.ngram < 1:
            raise ValueError(f"--num-perm and --ngram must be >= 1 (got {self.num_perm}, {self.ngram})")
        if self.shingle not in ("word", "char"):
            raise ValueError(f"unknown --shingle {self.shingle!r}; known: word, char")
        if self.hash not in ("sha1", "fast"):
            raise ValueError(f"unknown --hash {self.hash!r}; known: sha1, fast")
        for t in self.thresholds:
            if not 0.0 < t <= 1.0:
                raise ValueError(f"threshold {t} is outside (0, 1]")
        for b, r in self.bands_rows:
            if b < 1 or r < 1 or b * r > self.num_perm:
                raise ValueError(f"{b} bands x {r} rows need 1..{self.num_perm} permutations (--num-perm)")
        if not self.thresholds and not self.bands_rows:
            raise ValueError("nothing to compute: give a --threshold or --bands/--rows")

    def columns(self) -> dict[str, tuple[int, int]]:
        """Signature column name -> (bands, rows), in output order."""
        out = {f"signature_sim{float(t)}": optimal_param(float(t), self.num_perm) for t in self.thresholds}
        out.update({f"signature_b{b}_r{r}": (b, r) for b, r in self.bands_rows})
        return out

    def metadata(self) -> dict[str, Any]:
        return {
            "num_perm": self.num_perm,
            "seed": self.seed,
            "ngram": self.ngram,
            "shingle": self.shingle,
            "hash": self.hash,
            "rpv2_compatible": self.hash == "sha1" and self.shingle == "word",
            "permutation_checksum": permutation_checksum(self.num_perm, self.seed)
            if self.hash == "sha1"
            else None,
            "columns": {name: {"bands": b, "rows": r} for name, (b, r) in self.columns().items()},
        }


@dataclass(frozen=True)
class MinHashTask:
    key: str  # the documents file relative to the output root
    weight: int


def minhash_schema(config: MinHashConfig) -> pa.Schema:
    fields = [
        pa.field("shard_id", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("id_int", pa.uint64(), nullable=False),
    ]
    fields += [pa.field(name, pa.list_(pa.binary())) for name in config.columns()]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(config.metadata(), sort_keys=True)})


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The stage parameters stored in a minhash file."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path}: no {METADATA_KEY.decode()} metadata (not written by `redpajama minhash`)")
    return json.loads(meta[METADATA_KEY])


def output_path(root: Path, documents_file: str) -> Path:
    return root / COMPONENT / Path(documents_file).relative_to(layout.DOCUMENTS)


def shard_id(documents_file: str) -> str:
    """RPv2's `uri_id`: `<snapshot>/<shard>/<lang>_<bucket>.json.gz`."""
    relative = Path(documents_file).relative_to(layout.DOCUMENTS)
    return relative.with_suffix(".json.gz").as_posix()


def plan(root: Path, config: MinHashConfig) -> list[MinHashTask]:
    """One task per complete documents file (its marker present), optionally by bucket."""
    return [MinHashTask(key=key, weight=size) for key, size in complete_documents_files(root, config.buckets)]


def _banded(sig: np.ndarray, valid: np.ndarray, bands: int, rows: int) -> pa.Array:
    """list<binary> column: per valid document `bands` elements of 4*rows bytes; null otherwise."""
    data = band_bytes(sig, bands, rows)  # (valid docs, bands*rows) big-endian uint32
    width = 4 * rows
    values = pa.Array.from_buffers(
        pa.binary(),
        data.shape[0] * bands,
        [None, pa.py_buffer(np.arange(0, data.size * 4 + 1, width, dtype=np.int32)), pa.py_buffer(data)],
    )
    offsets = np.zeros(valid.size + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(valid.astype(np.int32) * bands)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


def minhash_batch(
    batch: pa.RecordBatch, config: MinHashConfig, schema: pa.Schema, shard: str
) -> pa.RecordBatch:
    """Signatures of every document in `batch` (columns id, id_int, raw_content)."""
    words = [DocView(text or "").normalized_words for text in batch.column("raw_content").to_pylist()]
    make = word_shingles if config.shingle == "word" else char_shingles
    shingles = make(words, config.ngram)
    sig = signatures(shingles, hash=config.hash, num_perm=config.num_perm, seed=config.seed)
    arrays: list[pa.Array] = [
        pa.array([shard] * batch.num_rows, pa.string()),
        batch.column("id"),
        batch.column("id_int"),
    ]
    arrays += [_banded(sig, shingles.valid, b, r) for b, r in config.columns().values()]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class MinHashWork:
    config: MinHashConfig

    def __call__(self, task: MinHashTask, ctx: TaskContext) -> TaskResult:
        schema = minhash_schema(self.config)
        shard = shard_id(task.key)
        batches = documents_batches(ctx.root / task.key, _INPUT_COLUMNS, rows=self.config.batch_rows)
        return map_batches_to_file(
            ctx,
            task.weight,
            batches,
            output_path(ctx.root, task.key),
            schema,
            lambda batch: minhash_batch(batch, self.config, schema, shard),
        )


def run(
    output: str | os.PathLike[str], config: MinHashConfig | None = None, options: RunOptions | None = None
) -> RunSummary:
    """MinHash signatures for every documents file under `output`; resumable."""
    config = config or MinHashConfig()
    config.validate()
    root = Path(output)
    tasks = plan(root, config)
    if not tasks:
        raise FileNotFoundError(
            f"no complete documents files under {root / layout.DOCUMENTS}; run `redpajama ingest ... -o {root}` first"
        )
    options = options or RunOptions()
    if not options.overwrite:
        check_settings(root, tasks, config)
    return run_tasks(STAGE, tasks, MinHashWork(config), root, options, clean_dirs=[root / COMPONENT])


def check_settings(root: Path, tasks: list[MinHashTask], config: MinHashConfig) -> None:
    """Refuse to call files done that were made with other settings (other thresholds, num_perm,
    hash, ...): the run would skip them and leave the signatures asked for unwritten."""
    wanted = config.metadata()
    for task in tasks:
        path = output_path(root, task.key)
        if not (path.exists() and markers.read_marker(path) is not None):
            continue
        try:
            have = read_metadata(path)
        except ValueError:
            continue
        changed = sorted(k for k in wanted.keys() | have.keys() if wanted.get(k) != have.get(k))
        if changed:
            there = [", ".join(have.get(k) or ()) if k == "columns" else str(have.get(k)) for k in changed]
            raise UserError(
                f"{path} was made with other settings: "
                + "; ".join(f"{k} {v}" for k, v in zip(changed, there, strict=True)),
                "--overwrite rewrites every file with the columns asked for now; or write to another -o",
            )
