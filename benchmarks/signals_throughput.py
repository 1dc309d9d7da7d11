"""Quality-signal throughput per core against datatrove's heuristic filters, in the same run.

    python benchmarks/signals_throughput.py [--quick]

Corpus: ~3 KB English web-like documents cut at line boundaries from real texts in the shared
data folder next to the checkout (Common Crawl documents from cc_net/Dolma, the text our
extractor gets from trafilatura's English eval pages and Common Crawl WARC pages, WikiText-2
articles, the English Debian reference). Single process, one core:

  ours      every registered rps_* signal (29) for every document, through the signals stage's
            batch function (`redpajama.pipelines.signals.signal_batch`: DocView, registry, Arrow
            columns), batches of 1,000 documents.
  datatrove GopherQualityFilter + GopherRepetitionFilter + C4QualityFilter + FineWebQualityFilter
            (0.10.1, defaults), each run on every document (as our signals are computed for every
            document; a pipeline that drops early would skip later filters for dropped documents,
            so its pass rate is printed too).

Median of N repeats after a warm-up pass (both sides build tables on first use). Writes
benchmarks/results/signals_throughput.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import cpu_model, versions  # noqa: E402  (benchmarks run as scripts)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "signals_throughput.json"
DOC_CHARS = 3_000


def _cut(text: str, size: int = DOC_CHARS) -> list[str]:
    """Consecutive ~size-char documents of whole lines."""
    docs, current, length = [], [], 0
    for line in text.splitlines():
        current.append(line)
        length += len(line) + 1
        if length >= size:
            docs.append("\n".join(current))
            current, length = [], 0
    if length > size // 3:
        docs.append("\n".join(current))
    return docs


def build_corpus(limit: int) -> list[str]:
    from redpajama.io.readers import read_file
    from redpajama.io.readers.base import RawDoc, ReadOptions

    texts: list[str] = []
    for name in ("cc_en_head-0091.jsonl.gz", "cc_en_head-0174.jsonl.gz"):
        with gzip.open(DATA / "dolma-test-warc-and-ccnet-jsonl" / name, "rt") as handle:
            texts += [json.loads(line)["text"] for line in handle]
    for warc in (
        "dolma-test-warc-and-ccnet-jsonl/sample-0000.warc.gz",
        "dolma-test-warc-and-ccnet-jsonl/sample-0001.warc.gz",
    ):
        texts += [
            d.fields["raw_content"]
            for d in read_file(str(DATA / warc), ReadOptions())
            if isinstance(d, RawDoc)
        ]
    pages = json.loads((DATA / "trafilatura-eval-html-multilingual" / "evaldata_subset.json").read_text())
    from redpajama.io.readers.extract import extract_html

    for info in pages.values():
        path = DATA / "trafilatura-eval-html-multilingual" / "html" / info["file"]
        if path.exists():
            texts.append(extract_html(path.read_bytes())[1])
    web = [d for t in texts for d in _cut(t)]
    wiki = _cut((DATA / "lm-wikitext-2-valid-test" / "valid.txt").read_text("utf-8"))
    debian = _cut(
        gzip.decompress(
            (DATA / "debian-reference-multilingual" / "txt" / "debian-reference.en.txt.gz").read_bytes()
        ).decode("utf-8")
    )
    # Web text first, then the others interleaved, until the limit.
    corpus = web + [d for pair in zip(wiki, debian, strict=False) for d in pair]
    return corpus[:limit]


def time_ours(docs: list[str]) -> float:
    import pyarrow as pa

    from redpajama.pipelines.signals import signal_batch, signals_schema
    from redpajama.quality_signals.registry import SIGNALS
    from redpajama.quality_signals.resources import Resources

    names = tuple(SIGNALS)
    schema = signals_schema(names)
    resources = Resources.load()
    batches = []
    for start in range(0, len(docs), 1000):
        chunk = docs[start : start + 1000]
        batches.append(
            pa.RecordBatch.from_pydict(
                {
                    "id": [str(i) for i in range(len(chunk))],
                    "id_int": pa.array(range(len(chunk)), pa.uint64()),
                    "raw_content": chunk,
                    "language": ["en"] * len(chunk),
                    "source_domain": ["example.com"] * len(chunk),
                }
            )
        )
    started = time.perf_counter()
    rows = sum(signal_batch(b, names, resources, schema).num_rows for b in batches)
    elapsed = time.perf_counter() - started
    assert rows == len(docs)
    return elapsed


def datatrove_filters():
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]


def time_datatrove(docs: list[str], filters) -> tuple[float, float]:
    from datatrove.data import Document

    documents = [Document(text=t, id=str(i)) for i, t in enumerate(docs)]
    kept = 0
    started = time.perf_counter()
    for doc in documents:
        verdicts = [f.filter(doc) for f in filters]
        kept += all((v[0] if isinstance(v, tuple) else v) for v in verdicts)
    elapsed = time.perf_counter() - started
    return elapsed, kept / len(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 documents, 1 repeat")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 2
    n_docs, repeats = (300, 1) if args.quick else (args.docs, args.repeats)
    docs = build_corpus(n_docs)
    chars = sum(len(d) for d in docs)
    filters = datatrove_filters()
    time_ours(docs[:50])  # warm-up: lookup tables, imports
    time_datatrove(docs[:50], filters)
    ours, theirs, pass_rate = [], [], 0.0
    for _ in range(repeats):
        ours.append(time_ours(docs))
        seconds, pass_rate = time_datatrove(docs, filters)
        theirs.append(seconds)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    result = {
        "benchmark": "signals_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "python": platform.python_version()},
        "versions": versions("redpajama", "datatrove", "pyarrow", "numpy"),
        "docs": len(docs),
        "mean_chars": round(chars / len(docs)),
        "repeats": repeats,
        "ours": {
            "what": "all 29 rps_* heuristic signals (signal_batch)",
            "seconds": ours_s,
            "docs_per_s": len(docs) / ours_s,
        },
        "datatrove": {
            "what": "Gopher quality + Gopher repetition + C4 quality + FineWeb quality, each on every doc",
            "seconds": theirs_s,
            "docs_per_s": len(docs) / theirs_s,
            "pass_rate": pass_rate,
        },
        "ratio": theirs_s / ours_s,
    }
    print(f"{len(docs)} documents, mean {chars / len(docs):,.0f} chars, median of {repeats}, one process")
    print(
        f"  ours      all rps_* signals          {result['ours']['docs_per_s']:8.1f} docs/s  ({ours_s:.2f} s)"
    )
    print(
        f"  datatrove 4 heuristic filters        {result['datatrove']['docs_per_s']:8.1f} docs/s  ({theirs_s:.2f} s, pass rate {pass_rate:.0%})"
    )
    print(f"  ratio ours / datatrove: {result['ratio']:.1f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
