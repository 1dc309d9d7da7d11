"""Fuzzy dedup at scale: LSH + connected components over synthetic signatures (threshold 0.8).

    python benchmarks/dedup_lsh_scale.py [--docs 10000000] [--quick]

Writes a planted minhash tree (9 bands x 13 rows; 20% of documents near-copies, similarity
0.75..1.0, of 200k-per-10M base documents; 1% without a signature), then times `dedup` in a
fresh child process so its peak RSS (ru_maxrss) is the stage's alone. Baseline in the same run:
a single Python dict band -> [rows] plus a per-edge union-find (what MinHashLSH-style insert/query
amounts to) on the first --baseline-docs documents, against our stage on the same subset.
Results: benchmarks/results/dedup_lsh_scale.json. Generation time is not counted.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "dedup_lsh_scale.json"
DOCS_PER_FILE = 250_000


def _worker(root: str, partitions: int | None) -> None:
    from redpajama.pipelines.dedup import stage
    from redpajama.pipelines.dedup.config import FuzzyConfig
    from redpajama.runners.local import RunOptions

    start = time.perf_counter()
    summary = stage.run(root, FuzzyConfig(threshold=0.8, partitions=partitions), RunOptions(progress=False))
    seconds = time.perf_counter() - start
    assert not summary.failed, summary.failed
    totals = json.loads((Path(root) / "_runs" / "dedup" / "summary.json").read_text())["fuzzy-0.8"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "summary": totals}))


def _timed_stage(root: Path, partitions: int | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(root)]
    if partitions:
        cmd += ["--partitions", str(partitions)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(root: Path) -> dict:
    """Single-dict LSH: (band, bytes) -> rows, then per-edge union-find; its own peak RSS."""
    from redpajama.pipelines.dedup.components import ReferenceUnionFind

    start = time.perf_counter()
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    row = 0
    for path in sorted((root / "minhash").rglob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(columns=["signature_sim0.8"], batch_size=100_000):
            for bands in batch.column(0).to_pylist():
                if bands is not None:
                    for j, band in enumerate(bands):
                        buckets[(j, band)].append(row)
                row += 1
    uf = ReferenceUnionFind(row)
    for members in buckets.values():
        for other in members[1:]:
            uf.union(members[0], other)
    roots = [uf.find(i) for i in range(row)]
    sizes = np.bincount(np.array(roots), minlength=row)
    clustered = int((sizes[np.array(roots)] >= 2).sum())
    return {
        "seconds": time.perf_counter() - start,
        "docs": row,
        "clustered_docs": clustered,
        "peak_rss_mb_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _subset(root: Path, dest: Path, files: int) -> None:
    for path in sorted((root / "minhash").rglob("*.parquet"))[:files]:
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        marker = path.with_name(f".{path.name}.done.json")
        shutil.copy2(marker, target.with_name(marker.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000_000)
    parser.add_argument("--baseline-docs", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1M documents, baseline on 250k")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.partitions)
        return
    if args.quick:
        args.docs, args.baseline_docs = 1_000_000, 250_000
    from redpajama.pipelines.dedup import synthetic

    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        root, small = Path(tmp) / "full", Path(tmp) / "subset"
        files = max(1, args.docs // DOCS_PER_FILE)
        spec = synthetic.PlantedSpec(
            docs_per_file=min(args.docs, DOCS_PER_FILE),
            files=files,
            bases=max(1, args.docs // 50),
            similarity=(0.75, 1.0),
            thresholds=(0.8,),
        )
        start = time.perf_counter()
        synthetic.write_planted_tree(root, spec)
        generated = time.perf_counter() - start
        full = _timed_stage(root, args.partitions)
        _subset(root, small, max(1, args.baseline_docs // spec.docs_per_file))
        ours_subset = _timed_stage(small, args.partitions)
        baseline = _baseline(small)
    docs = full["summary"]["docs"]
    result = {
        "benchmark": "dedup_lsh_scale",
        "command": " ".join(["python", "benchmarks/dedup_lsh_scale.py", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "versions": versions("numpy", "pyarrow"),
        "generate_seconds": round(generated, 1),
        "docs": docs,
        "stage_seconds": round(full["seconds"], 2),
        "docs_per_second": round(docs / full["seconds"]),
        "stage_peak_rss_mb": round(full["peak_rss_mb"], 1),
        "summary": full["summary"],
        "subset": {
            "docs": ours_subset["summary"]["docs"],
            "ours_seconds": round(ours_subset["seconds"], 2),
            "ours_peak_rss_mb": round(ours_subset["peak_rss_mb"], 1),
            "ours_clustered_docs": ours_subset["summary"]["clustered_docs"],
            "dict_baseline_seconds": round(baseline["seconds"], 2),
            "dict_baseline_peak_rss_mb": round(baseline["peak_rss_mb_process"], 1),
            "dict_baseline_clustered_docs": baseline["clustered_docs"],
            "speedup": round(baseline["seconds"] / ours_subset["seconds"], 1),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick or not RESULTS.exists():
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    else:
        RESULTS.with_name("dedup_lsh_scale_quick.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
