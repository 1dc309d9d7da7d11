"""Fuzzy dedup run: minhash/ -> clusters/fuzzy-<t>/, duplicates/fuzzy-<t>/, _runs/dedup/summary.json.

Passes, each streaming, so memory is bounded by one partition plus a few arrays over all rows:

1. read `id_int` and `signature_sim<t>` per batch; rows get dense indices in file order; band
   keys go to N partition files on disk (null signatures: no keys, never clustered);
2. per partition (alone, pure): sort keys, star edges member -> group min; edges spilled;
3. union-find over the spilled edges in chunks (components.py); cluster_id = min id_int;
4. keep policy over members of components of size >= 2; one clusters and one duplicates file per
   minhash file (possibly empty, so a rerun with other settings leaves no stale file).

Per row in memory: id_int (8 B), parent (4 B), component sizes and min id (16 B): ~30 B, i.e.
300 MB for 10M documents; a partition holds ~50 B per band key during its sort. The partition
count is derived from `memory_gb` unless given. The whole run is one task of the local runner:
its marker (and the output files' markers) make a rerun with the same settings a no-op.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io import atomic, layout
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.dedup import distributed, lsh
from redpajama.pipelines.dedup.components import UnionFind
from redpajama.pipelines.dedup.config import FuzzyConfig, signature_column
from redpajama.pipelines.dedup.inputs import list_files
from redpajama.pipelines.dedup.keep import InputFile, choose_kept, member_scores
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

STAGE = "dedup"
MINHASH = "minhash"
CLUSTERS = "clusters"
DUPLICATES = "duplicates"
_BYTES_PER_KEY = 50  # keys, rows, argsort order, sorted copies, group ids during partition_edges
_BYTES_PER_ROW = 32

CLUSTER_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("id_int", pa.uint64(), nullable=False),
        pa.field("cluster_id", pa.uint64(), nullable=False),
        pa.field("shard_id", pa.string(), nullable=False),  # RPv2's run_lsh writes these four columns
    ]
)


@dataclass(frozen=True)
class FuzzyTask:
    key: str
    weight: int
    files: tuple[InputFile, ...]


def auto_partitions(total_rows: int, bands: int, memory_gb: float) -> int:
    budget = memory_gb * 2**30 - total_rows * _BYTES_PER_ROW
    budget = max(budget / 2, 64 * 2**20)  # half for the partition, half for buffers and Arrow
    return max(1, math.ceil(total_rows * bands * _BYTES_PER_KEY / budget))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """Components of size >= 2 by size: exact for 2..4, then power-of-two bins ("5-8", ...)."""
    hist: dict[str, int] = {}
    for size in (2, 3, 4):
        count = int((sizes == size).sum())
        if count:
            hist[str(size)] = count
    lo = 5
    while lo <= (sizes.max() if sizes.size else 0):
        hi = 2 * (lo - 1)
        count = int(((sizes >= lo) & (sizes <= hi)).sum())
        if count:
            hist[f"{lo}-{hi}"] = count
        lo = hi + 1
    return hist


def band_layout(root: Path, files: tuple[InputFile, ...], column: str) -> tuple[int, int] | None:
    """(bands, rows) of `column`'s signatures, from the first one present: whatever threshold and
    num_perm the minhash stage ran with (RPv2: `optimal_param`). None: no document has one."""
    for f in files:
        parquet = pq.ParquetFile(root / MINHASH / f.relative)
        if column not in parquet.schema_arrow.names:
            raise ValueError(f"{f.relative}: no column {column} (run `redpajama minhash` for this threshold)")
        for batch in parquet.iter_batches(batch_size=1024, columns=[column]):
            _, sig = lsh.signature_matrix(batch.column(0))
            if sig.size:
                return sig.shape[1], sig.shape[2]
    return None


def _spill_bands(
    root: Path,
    files: tuple[InputFile, ...],
    config: FuzzyConfig,
    spill: lsh.PartitionSpill,
    id_int: np.ndarray,
    band_rows: tuple[int, int],
) -> int:
    column = signature_column(config.threshold)
    bands, rows_per_band = band_rows
    with_signature = 0
    for f in files:
        parquet = pq.ParquetFile(root / MINHASH / f.relative)
        if column not in parquet.schema_arrow.names:
            raise ValueError(f"{f.relative}: no column {column} (run `redpajama minhash` for this threshold)")
        offset = f.start
        for batch in parquet.iter_batches(batch_size=config.batch_rows, columns=["id_int", column]):
            n = batch.num_rows
            id_int[offset : offset + n] = batch.column("id_int").to_numpy(zero_copy_only=False)
            valid, sig = lsh.signature_matrix(batch.column(column))
            if sig.size and sig.shape[1:] != (bands, rows_per_band):
                raise ValueError(
                    f"{f.relative}: {column} has {sig.shape[1]} bands x {sig.shape[2]} rows, "
                    f"expected {bands} x {rows_per_band}"
                )
            if sig.size:
                spill.add(lsh.band_keys(sig), offset + np.flatnonzero(valid))
            with_signature += int(valid.sum())
            offset += n
    spill.close()
    return with_signature


def _edges(spill: lsh.PartitionSpill, work: Path) -> tuple[Path, Path, int]:
    src_path, dst_path = work / "edges.src", work / "edges.dst"
    count = 0
    with open(src_path, "wb") as src_file, open(dst_path, "wb") as dst_file:
        for _, keys, rows in spill.iter_partitions():
            src, dst = lsh.partition_edges(keys, rows)
            src_file.write(src.tobytes())
            dst_file.write(dst.tobytes())
            count += src.size
    return src_path, dst_path, count


def _union(uf: UnionFind, src_path: Path, dst_path: Path, chunk: int) -> None:
    dtype = uf.parent.dtype
    with open(src_path, "rb") as src_file, open(dst_path, "rb") as dst_file:
        while True:
            src = np.fromfile(src_file, dtype=dtype, count=chunk)
            dst = np.fromfile(dst_file, dtype=dtype, count=chunk)
            if src.size == 0:
                return
            uf.union(src, dst)


@dataclass(frozen=True)
class FuzzyWork:
    config: FuzzyConfig
    engine: RunOptions | None = None  # runner "ray": partitions and components as Ray tasks

    def __call__(self, task: FuzzyTask, ctx: TaskContext) -> TaskResult:
        root, config, files = ctx.root, self.config, task.files
        stats = Stats(bytes_in=task.weight)
        total = sum(f.rows for f in files)
        band_rows = band_layout(root, files, signature_column(config.threshold)) or (1, 0)
        bands = band_rows[0]
        partitions = config.partitions or auto_partitions(total, bands, config.memory_gb)
        if self.engine is not None and not config.partitions:  # at least one partition per worker
            partitions = max(partitions, self.engine.workers or os.cpu_count() or 1)
        dtype = lsh.row_dtype(total)
        work = layout.stage_dir(root, STAGE) / f"work-{config.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            id_int = np.empty(total, dtype=np.uint64)
            spill = lsh.PartitionSpill(work, partitions, dtype)
            with stats.timed("bands"):
                with_signature = _spill_bands(root, files, config, spill, id_int, band_rows)
            ctx.progress(total)
            if self.engine is not None:
                with stats.timed("components"):
                    labels, edge_count = _ray_labels(spill, total, dtype, self.engine)
            else:
                with stats.timed("edges"):
                    src_path, dst_path, edge_count = _edges(spill, work)
                with stats.timed("components"):
                    uf = UnionFind(total, dtype)
                    _union(uf, src_path, dst_path, config.edge_chunk)
                    labels = uf.labels()
                    del uf
            with stats.timed("components"):
                sizes = np.bincount(labels, minlength=total)
                member = sizes[labels] >= 2
                cluster_min = np.full(total, np.iinfo(np.uint64).max, dtype=np.uint64)
                np.minimum.at(cluster_min, labels[member], id_int[member])
            with stats.timed("keep"):
                ids_of = _member_ids(root, files, member)
                rows = np.flatnonzero(member)
                score = member_scores(root, config.keep, files, ids_of)
                kept_rows = rows[choose_kept(labels[rows], id_int[rows], score)]
                duplicate = member.copy()
                duplicate[kept_rows] = False
            with stats.timed("write"):
                outputs = _write(root, config.name, files, ids_of, id_int, labels, cluster_min, duplicate)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        component_sizes = sizes[sizes >= 2]
        stats.docs_in = total
        stats.docs_out = int(duplicate.sum())
        stats.bytes_out = sum(o.bytes for o in outputs)
        summary = {
            "mode": config.name,
            "threshold": config.threshold,
            "bands_rows": list(band_rows),
            "keep": config.keep,
            "partitions": partitions,
            "files": len(files),
            "docs": total,
            "docs_with_signature": with_signature,
            "band_keys": spill.entries,
            "candidate_edges": edge_count,
            "clusters": int(component_sizes.size),
            "clustered_docs": int(component_sizes.sum()),
            "duplicates": int(duplicate.sum()),
            "largest_cluster": int(component_sizes.max()) if component_sizes.size else 0,
            "cluster_sizes": size_histogram(component_sizes),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "phase_seconds": {k: round(v, 3) for k, v in sorted(stats.seconds.items())},
            "outputs": {
                "clusters": f"{CLUSTERS}/{config.name}",
                "duplicates": f"{DUPLICATES}/{config.name}",
            },
        }
        write_summary(root, config.name, summary)
        return TaskResult(outputs=outputs, stats=stats)


def _ray_labels(spill: lsh.PartitionSpill, total: int, dtype, engine: RunOptions) -> tuple[np.ndarray, int]:
    from redpajama.runners import ray_engine

    with ray_engine.session(engine):
        forest = distributed.components_ray(spill)
    return distributed.labels_of(total, forest, dtype), forest.edges


def _member_ids(
    root: Path, files: tuple[InputFile, ...], member: np.ndarray
) -> dict[str, tuple[np.ndarray, pa.Array]]:
    out = {}
    for f in files:
        local = np.flatnonzero(member[f.start : f.start + f.rows])
        if local.size:
            ids = pq.read_table(root / MINHASH / f.relative, columns=["id"]).column("id")
            out[f.relative] = (local + f.start, ids.take(pa.array(local)).combine_chunks())
    return out


def _write(root, name, files, ids_of, id_int, labels, cluster_min, duplicate) -> list:
    outputs = []
    empty = pa.array([], pa.string())
    for f in files:
        rows, ids = ids_of.get(f.relative, (np.zeros(0, dtype=np.int64), empty))
        shard = f.relative.removesuffix(".parquet") + ".json.gz"  # RPv2's shard_id of the file
        clusters = pa.RecordBatch.from_arrays(
            [ids, pa.array(id_int[rows]), pa.array(cluster_min[labels[rows]]), pa.array([shard] * len(rows))],
            schema=CLUSTER_SCHEMA,
        )
        dup = duplicate[rows]
        writer = PartitionedWriter(root, CLUSTER_SCHEMA)
        cluster_file = root / CLUSTERS / name / f.relative
        duplicate_file = root / DUPLICATES / name / f.relative
        writer.open(cluster_file)
        writer.open(duplicate_file)
        try:
            writer.write(cluster_file, clusters)
            writer.write(duplicate_file, clusters.filter(pa.array(dup)))
            outputs += writer.commit()
        except BaseException:
            writer.abort()
            raise
    return outputs


def write_summary(root: Path, mode: str, summary: dict[str, Any]) -> None:
    """`_runs/dedup/summary.json` holds the latest summary of each mode (exact, fuzzy-<t>)."""
    path = layout.stage_dir(root, STAGE) / "summary.json"
    merged: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        merged = json.loads(path.read_text("utf-8"))
    merged[mode] = summary
    atomic.write_json(path, merged)


def run(
    output: str | os.PathLike[str], config: FuzzyConfig | None = None, options: RunOptions | None = None
) -> RunSummary:
    """Fuzzy-deduplicate every complete minhash file under `output`; a rerun with the same settings
    is a no-op."""
    config = config or FuzzyConfig()
    root = Path(output)
    files = tuple(list_files(root, MINHASH))
    if not files:
        raise FileNotFoundError(
            2, f"no complete minhash files; run `redpajama minhash {root}` first", str(root / MINHASH)
        )
    # The key names the settings that change the outputs: other settings redo the run.
    key = f"{config.name}-keep-{config.keep}"
    weight = sum((root / MINHASH / f.relative).stat().st_size for f in files)
    task = FuzzyTask(key=key, weight=weight, files=files)
    options = options or RunOptions()
    # The run is one task in this process; with Ray, that task fans its partitions out.
    engine = options if options.runner == "ray" else None
    options = RunOptions(workers=1, progress=options.progress, overwrite=options.overwrite, retries=0)
    return run_tasks(
        STAGE,
        [task],
        FuzzyWork(config, engine),
        root,
        options,
        clean_dirs=[root / CLUSTERS / config.name, root / DUPLICATES / config.name],
    )
