"""Ingest throughput per core, WARC (with HTML extraction) and WET, against datatrove in the same run.

    python benchmarks/ingest_throughput.py [--quick]

Builds larger inputs in a temp dir by repeating the small real Common Crawl files in the
`shared/data` folder next to the checkout (gzip members concatenate into a valid multi-member
gzip), then times,
pinned to one CPU, single process:

  WARC  ours: `redpajama.io.readers.read_file(path, ReadOptions())` fully consumed (extraction
        included), and the ingest stage's Arrow batching if it exists; datatrove 0.10.1:
        `WarcReader` -> `Trafilatura()` with its defaults, chained as its pipeline chains them;
        a bare fastwarc + resiliparse loop as a floor for what any Python reader can cost.
  WET   ours as above; datatrove `WarcReader` alone (WET needs no extraction); a bare
        gzip + fastwarc iteration that reads every record's payload.

Each row: median of N repeats (repeats interleaved so drift hits all rows alike), MB/s over the
compressed and the decompressed bytes (MB = 1e6 bytes), docs/s, and the ratio to datatrove's row
of the same run. CPU seconds (self + child processes: datatrove extracts in a sandbox subprocess)
are recorded next to wall seconds to show that one core was used. JSON goes to
benchmarks/results/ingest_throughput.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import cpu_model, quiet_datatrove, versions  # noqa: E402  (benchmarks run as scripts)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "ingest_throughput.json"

WARC_SOURCES = [
    "cc-warc-cc-main-2020-34-resiliparse/warcfile.warc.gz",
    "dolma-test-warc-and-ccnet-jsonl/sample-0000.warc.gz",
    "dolma-test-warc-and-ccnet-jsonl/sample-0001.warc.gz",
    "cc-whirlwind-cc-main-2024-22/whirlwind.warc.gz",
]
# cc-wet-format-sample-cc_net/sample.warc.wet is left out: a hand-made fixture with LF line ends and
# Content-Lengths that do not match, which fastwarc and warcio both reject; it would time error paths.
WET_SOURCES = ["cc-whirlwind-cc-main-2024-22/whirlwind.warc.wet.gz"]
# decompressed bytes to build; big enough that every row runs > 1 s on a slow core
TARGET_BYTES = {"warc": 24_000_000, "wet": 10_000_000}
QUICK_BYTES = {"warc": 2_500_000, "wet": 1_000_000}
MB = 1e6


# ---------------------------------------------------------------- inputs


@dataclass
class Input:
    kind: str
    path: Path
    copies: int
    compressed_bytes: int
    uncompressed_bytes: int
    sources: list[str]


def _as_gzip_member(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw if raw[:2] == b"\x1f\x8b" else gzip.compress(raw, compresslevel=6)


def build_input(kind: str, sources: list[str], target: int, folder: Path) -> Input:
    """Repeat the sources' gzip members until the decompressed size reaches `target`."""
    block = b"".join(_as_gzip_member(DATA / s) for s in sources)
    block_plain = len(gzip.decompress(block))
    copies = max(1, -(-target // block_plain))
    folder.mkdir(parents=True)
    path = folder / ("input.warc.gz" if kind == "warc" else "input.warc.wet.gz")
    with path.open("wb") as out:
        for _ in range(copies):
            out.write(block)
    return Input(kind, path, copies, path.stat().st_size, copies * block_plain, sources)


# ---------------------------------------------------------------- contestants
# Each takes a file path and returns (documents out, bad records, characters of text out) so a
# run that yields nothing is caught instead of timed.


def ours_read_file(path: Path) -> tuple[int, int, int]:
    from redpajama.io.readers import read_file
    from redpajama.io.readers.base import RawDoc, ReadOptions

    docs = errors = chars = 0
    for item in read_file(str(path), ReadOptions()):
        if isinstance(item, RawDoc):
            docs += 1
            chars += len(item.fields.get("raw_content") or item.fields.get("text") or "")
        else:
            errors += 1
    return docs, errors, chars


def ours_ingest(path: Path) -> tuple[int, int, int]:
    """The whole ingest task as the runner runs it: read, extract, Arrow, Parquet, markers."""
    import tempfile

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from redpajama.pipelines import ingest
    from redpajama.runners.local import TaskContext

    config = ingest.IngestConfig()
    (task,) = ingest.plan([str(path)], config)
    with tempfile.TemporaryDirectory() as out:
        result = ingest.IngestWork(config)(task, TaskContext(Path(out), lambda docs, nbytes: None))
        chars = sum(
            pc.sum(pq.read_table(Path(out) / o.path, columns=["length"]).column(0)).as_py() or 0
            for o in result.outputs
        )
    return result.stats.docs_out, result.stats.error_count, chars


def datatrove_warc(path: Path, extract: bool, **extractor_options) -> tuple[int, int, int]:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    # A datatrove pipeline hands each step the previous step's generator: reader(), then extractor.run(docs).
    reader = WarcReader(str(path.parent), glob_pattern=path.name)
    docs_in = reader.run(None, rank=0, world_size=1)
    docs_out = Trafilatura(**extractor_options).run(docs_in, rank=0, world_size=1) if extract else docs_in
    docs = chars = 0
    for doc in docs_out:
        docs += 1
        chars += len(doc.text)
    return docs, 0, chars


def floor_fastwarc_resiliparse(path: Path) -> tuple[int, int, int]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    docs = chars = 0
    with path.open("rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
            if not (rec.http_content_type or "").startswith(("text/html", "application/xhtml")):
                continue
            raw = rec.reader.read()
            text = extract_plain_text(
                HTMLTree.parse(bytes_to_str(raw, detect_encoding(raw))), main_content=True
            )
            docs += 1
            chars += len(text)
    return docs, 0, chars


def floor_fastwarc_wet(path: Path) -> tuple[int, int, int]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    docs = chars = 0
    with path.open("rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.conversion, parse_http=False):
            chars += len(rec.reader.read().decode("utf-8", "replace"))
            docs += 1
    return docs, 0, chars


def contestants(kind: str) -> list[tuple[str, Callable[[Path], tuple[int, int, int]], str]]:
    """(name, function, role); role 'baseline' is datatrove, the ratio's denominator."""
    rows = []
    try:
        from redpajama.io.readers import read_file  # noqa: F401

        rows.append(("ours: read_file", ours_read_file, "ours"))
    except ImportError:
        print("redpajama.io.readers.read_file not importable: our reader row skipped", file=sys.stderr)
    rows.append(("ours: ingest task (read + Arrow + Parquet)", ours_ingest, "ours"))
    if kind == "warc":
        rows.append(("datatrove: WarcReader + Trafilatura()", lambda p: datatrove_warc(p, True), "baseline"))
        # The input repeats the same pages, so trafilatura's cross-document dedup (on by default)
        # empties most repeats; this row shows what that does to datatrove's time.
        rows.append(
            (
                "datatrove: same, deduplicate=False",
                lambda p: datatrove_warc(p, True, deduplicate=False),
                "reference",
            )
        )
        rows.append(("floor: fastwarc + resiliparse loop", floor_fastwarc_resiliparse, "reference"))
    else:
        rows.append(("datatrove: WarcReader", lambda p: datatrove_warc(p, False), "baseline"))
        rows.append(("floor: gzip + fastwarc iteration", floor_fastwarc_wet, "reference"))
    return rows


# ---------------------------------------------------------------- timing


@dataclass
class Timing:
    name: str
    role: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    result: tuple[int, int, int] | None = None
    error: str | None = None


def _cpu_now() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def time_once(
    fn: Callable[[Path], tuple[int, int, int]], path: Path
) -> tuple[float, float, tuple[int, int, int]]:
    cpu0, t0 = _cpu_now(), time.perf_counter()
    result = fn(path)
    wall = time.perf_counter() - t0
    return wall, _cpu_now() - cpu0, result


def run_kind(inp: Input, warm: Input, repeats: int) -> list[Timing]:
    rows = contestants(inp.kind)
    timings = [Timing(name, role) for name, _, role in rows]
    fns = {name: fn for name, fn, _ in rows}
    for t in timings:  # warm-up on one copy: imports and lazy set-up stay out of the timed runs
        try:
            if fns[t.name](warm.path)[0] == 0:
                t.error = "no documents out on the warm-up input"
        except Exception as exc:  # a broken contestant is reported, not fatal
            t.error = f"{type(exc).__name__}: {exc}"
    for _ in range(repeats):
        for t in timings:
            if t.error:
                continue
            try:
                wall, cpu, result = time_once(fns[t.name], inp.path)
            except Exception as exc:
                t.error = f"{type(exc).__name__}: {exc}"
                continue
            if result[0] == 0:
                t.error = "no documents out"
                continue
            if t.result is not None and t.result != result:
                t.error = f"result changed between repeats: {t.result} then {result}"
                continue
            t.wall.append(wall)
            t.cpu.append(cpu)
            t.result = result
    return timings


def summarize(inp: Input, timings: list[Timing]) -> list[dict]:
    base = next((t for t in timings if t.role == "baseline" and t.wall), None)
    base_s = statistics.median(base.wall) if base else None
    rows = []
    for t in timings:
        if t.error or not t.wall:
            rows.append({"name": t.name, "role": t.role, "error": t.error or "did not run"})
            continue
        s = statistics.median(t.wall)
        docs, errors, chars = t.result
        rows.append(
            {
                "name": t.name,
                "role": t.role,
                "seconds": s,
                "seconds_all": t.wall,
                "cpu_seconds": statistics.median(t.cpu),
                "docs": docs,
                "bad_records": errors,
                "text_chars": chars,
                "mb_per_s_compressed": inp.compressed_bytes / MB / s,
                "mb_per_s_uncompressed": inp.uncompressed_bytes / MB / s,
                "docs_per_s": docs / s,
                "ratio_vs_datatrove": (base_s / s) if base_s else None,
            }
        )
    return rows


# ---------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    return versions("redpajama", "datatrove", "trafilatura", "warcio", "fastwarc", "resiliparse", "pyarrow")


def _print_table(inp: Input, rows: list[dict]) -> None:
    print(
        f"\n{inp.kind.upper()}: {inp.compressed_bytes / MB:.1f} MB on disk, {inp.uncompressed_bytes / MB:.1f} MB "
        f"decompressed ({inp.copies} copies of {len(inp.sources)} files)"
    )
    print(
        f"{'':<40} {'s':>7} {'cpu s':>7} {'MB/s gz':>8} {'MB/s raw':>8} {'docs/s':>8} {'docs':>7} {'x dtrove':>8}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<40} not timed: {r['error']}")
            continue
        ratio = f"{r['ratio_vs_datatrove']:.2f}" if r["ratio_vs_datatrove"] else "-"
        print(
            f"{r['name']:<40} {r['seconds']:7.2f} {r['cpu_seconds']:7.2f} {r['mb_per_s_compressed']:8.2f}"
            f" {r['mb_per_s_uncompressed']:8.2f} {r['docs_per_s']:8.1f} {r['docs']:7d} {ratio:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, 1 repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last one allowed)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)

    missing = [s for s in WARC_SOURCES + WET_SOURCES if not (DATA / s).is_file()]
    if missing:
        print(f"input files missing under {DATA}: {missing}", file=sys.stderr)
        return 2
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(
        0, {cpu}
    )  # per-core figures: everything, datatrove's sandbox child included, on one CPU
    quiet_datatrove()

    targets = QUICK_BYTES if args.quick else TARGET_BYTES
    tmp = Path(tempfile.mkdtemp(prefix="rp-bench-ingest-"))
    report: dict = {
        "benchmark": "ingest_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/ingest_throughput.py" + (" --quick" if args.quick else ""),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "pinned_cpu": cpu,
            "python": platform.python_version(),
        },
        "versions": _versions(),
        "repeats": repeats,
        "mb": "1e6 bytes",
        "kinds": {},
    }
    try:
        for kind, sources in (("warc", WARC_SOURCES), ("wet", WET_SOURCES)):
            inp = build_input(kind, sources, targets[kind], tmp / kind)
            warm = build_input(kind, sources, 1, tmp / f"{kind}-warm")
            rows = summarize(inp, run_kind(inp, warm, repeats))
            _print_table(inp, rows)
            report["kinds"][kind] = {
                "input": {
                    "sources": sources,
                    "copies": inp.copies,
                    "compressed_bytes": inp.compressed_bytes,
                    "uncompressed_bytes": inp.uncompressed_bytes,
                },
                "rows": rows,
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nMB/s: per core (one pinned CPU); x dtrove: datatrove's median seconds / this row's, same run")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
