"""Signals and minhash stage throughput: local runner vs Ray (vs Beam when its engine exists).

    python benchmarks/engines_throughput.py [--docs 2000] [--shards 8] [--repeats 3]

Input: `--docs` ~3 KB English documents (the signals benchmark's corpus, cycled; random words
when the shared data folder is missing) as `--shards` JSONL files, ingested once. Each row runs
`signals.run` then `minhash.run` on a fresh copy of that ingested tree, all cores, and times each
stage's wall seconds (the stage call as a user makes it, scheduling and commits included):

  local          the default runner (spawned process pool, started per stage call)
  ray            Ray engine, each stage call starting and stopping its own local Ray
  ray (session)  Ray engine inside one Ray session started before the stages (what a pipeline
                 run or `--address` to a running cluster gets); the start itself is reported
  beam           when `redpajama.runners.beam_engine` is importable, default pipeline options

Median of N repeats; ratio = local seconds / row seconds (throughput relative to local, higher
is better). Outputs are checked identical to local's. Writes benchmarks/results/engines_throughput.json.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import cpu_model, versions  # noqa: E402  (benchmarks run as scripts)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "engines_throughput.json"
STAGES = ("signals", "minhash")


def corpus(docs: int) -> list[str]:
    try:
        from signals_throughput import build_corpus

        base = build_corpus(docs)
    except (OSError, ImportError):
        base = []
    if not base:  # no shared data: random English words, same size
        rng = random.Random(0)
        words = ["the", "of", "and", "to", "in", "is", "that", "for", "it", "was", "with", "this", "from"]
        base = [" ".join(rng.choice(words) for _ in range(600)) for _ in range(500)]
    # Cycling repeats documents; each copy gets its own url so ids stay distinct.
    return [base[i % len(base)] for i in range(docs)]


def write_inputs(folder: Path, texts: list[str], shards: int) -> None:
    folder.mkdir(parents=True)
    for s in range(shards):
        with open(folder / f"part-{s:02d}.jsonl", "w") as handle:
            for i in range(s, len(texts), shards):
                handle.write(json.dumps({"text": texts[i], "url": f"https://bench.example/{i}"}) + "\n")


def run_stages(root: Path, runner: str) -> dict[str, float]:
    from redpajama.pipelines import minhash, signals
    from redpajama.runners.local import RunOptions

    options = RunOptions(runner=runner, progress=False)
    seconds = {}
    for name, stage in (("signals", signals), ("minhash", minhash)):
        started = time.perf_counter()
        summary = stage.run(root, options=options)
        seconds[name] = time.perf_counter() - started
        if summary.failed or summary.tasks_run != summary.tasks_total:
            raise RuntimeError(f"{runner} {name}: {summary.failed}")
    return seconds


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for component in ("quality_signals", "minhash"):
        for path in sorted((root / component).rglob("*.parquet")):
            h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from redpajama.pipelines import ingest
    from redpajama.runners.local import RunOptions

    texts = corpus(args.docs)
    work = Path(tempfile.mkdtemp(prefix="engines-bench-"))
    try:
        write_inputs(work / "inputs", texts, args.shards)
        base = work / "base"
        ingest.run([str(work / "inputs")], base, options=RunOptions(progress=False))

        rows: dict[str, list[dict[str, float]]] = {}
        digests: dict[str, str] = {}
        runners = ["local"]
        if importlib.util.find_spec("ray") is not None:
            runners += ["ray", "ray (session)"]
        if importlib.util.find_spec("redpajama.runners.beam_engine") is not None:
            runners.append("beam")
        ray_start = None
        for repeat in range(args.repeats):
            for row in runners:
                tree = work / f"run-{repeat}-{row.replace(' ', '').replace('(', '-').replace(')', '')}"
                shutil.copytree(base, tree)
                if row == "ray (session)":
                    import ray

                    started = time.perf_counter()
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
                    ray_start = time.perf_counter() - started
                    try:
                        seconds = run_stages(tree, "ray")
                    finally:
                        ray.shutdown()
                else:
                    seconds = run_stages(tree, row)
                rows.setdefault(row, []).append(seconds)
                digests[row] = digest(tree)
                shutil.rmtree(tree)
                print(f"repeat {repeat} {row:14s} " + "  ".join(f"{k} {v:6.2f}s" for k, v in seconds.items()))
        if len(set(digests.values())) != 1:
            raise SystemExit(f"outputs differ between runners: {digests}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = {row: {s: statistics.median(r[s] for r in runs) for s in STAGES} for row, runs in rows.items()}
    table = []
    for row, secs in median.items():
        entry = {"runner": row}
        for s in STAGES:
            entry[f"{s}_seconds"] = round(secs[s], 3)
            entry[f"{s}_docs_per_second"] = round(args.docs / secs[s], 1)
            entry[f"{s}_ratio_to_local"] = round(median["local"][s] / secs[s], 3)
        table.append(entry)
    result = {
        "benchmark": "engines_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "docs": args.docs,
        "shards": args.shards,
        "repeats": args.repeats,
        "input_mb": round(sum(len(t.encode()) for t in texts) / 1e6, 2),
        "ray_session_start_seconds": round(ray_start, 3) if ray_start is not None else None,
        "rows": table,
        "outputs_identical": True,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": versions("redpajama", "ray", "apache-beam", "pyarrow", "numpy"),
        "argv": sys.argv[1:],
    }
    for entry in table:
        print(
            f"{entry['runner']:14s} "
            + "  ".join(
                f"{s} {entry[f'{s}_seconds']:6.2f}s {entry[f'{s}_ratio_to_local']:.2f}x" for s in STAGES
            )
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
