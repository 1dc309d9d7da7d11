"""Extraction quality on trafilatura's annotated eval pages: our extractor vs datatrove's default.

    python benchmarks/extraction_quality.py

Scores every extractor on the same pages with `redpajama.io.extraction_eval` (trafilatura's own
scoring), prints a table and writes benchmarks/results/extraction_quality.json. The datatrove row
runs `Trafilatura()` with its defaults through its own `run` (subprocess sandbox, 1 s timeout), as a
datatrove pipeline would after `WarcReader`, so a page it drops scores as a full miss. Timings are
wall seconds over all pages on this machine; only the ratio between rows of one run means much.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from _common import cpu_model, quiet_datatrove, versions  # noqa: E402  (benchmarks run as scripts)

from redpajama.io.extraction_eval import EvalPage, aggregate, default_eval_dir, load_eval_set, run_extractor

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "extraction_quality.json"


def _resiliparse_text(raw: bytes, **opts) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(bytes_to_str(raw, detect_encoding(raw)))
    return extract_plain_text(tree, **opts)


def ours() -> tuple[str, Callable[..., str]]:
    """Our extractor as `fn(raw, **options) -> text`, or a resiliparse stand-in before it exists."""
    try:
        from redpajama.io.readers.extract import extract_html
    except ImportError:
        return "redpajama (stand-in: resiliparse main_content)", lambda raw, **kw: _resiliparse_text(
            raw, **{"main_content": True, **kw}
        )

    def run(raw: bytes, **options) -> str:
        opts = {"main_content": True, "timeout": 5.0, "content_type": "text/html", **options}
        return extract_html(raw, **opts)[1]

    return "redpajama extract_html (defaults)", run


def _or_full_page(fn: Callable[..., str]) -> Callable[[bytes], str]:
    # resiliparse's main-content heuristics return nothing on a few real pages (wrapper classes
    # that look like boilerplate); falling back to the whole page keeps their text.
    return lambda raw: fn(raw) or fn(raw, main_content=False)


def _trafilatura_fast(raw: bytes) -> str | None:
    from trafilatura import extract

    # trafilatura 1.x spells "fast" as no_fallback; same options as datatrove's default otherwise
    return extract(raw, favor_precision=True, include_comments=False, deduplicate=True, no_fallback=True)


def _decode_like_warcreader(raw: bytes) -> str | None:
    """datatrove's WarcReader.process_record: UTF-8, else cchardet's guess, else the record is dropped."""
    import cchardet

    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        enc = cchardet.detect(raw)["encoding"]
        if not enc or enc == "UTF-8":
            return None
        try:
            return raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            return None


def datatrove_texts(pages: list[EvalPage]) -> dict[str, str]:
    """Run datatrove's default extractor over all pages at once, through its own `run`."""
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura

    docs = []
    for page in pages:
        html = _decode_like_warcreader(page.html)
        if html is not None:
            docs.append(Document(text=html, id=page.file))
    return {doc.id: doc.text for doc in Trafilatura().run(iter(docs))}


def evaluate_all(pages: list[EvalPage]) -> list[dict]:
    name, our_fn = ours()
    extractors: list[tuple[str, Callable[[bytes], str]]] = [
        (name, our_fn),
        ("  same, alt_texts=True", lambda r: our_fn(r, alt_texts=True)),
        ("  same, full page when main content is empty", _or_full_page(our_fn)),
        (
            "  same, comments=False + full page when empty",
            _or_full_page(lambda r, **kw: our_fn(r, **{"comments": False, **kw})),
        ),
        ("  same, main_content=False (whole page)", lambda r: our_fn(r, main_content=False)),
        ("  same, comments=True", lambda r: our_fn(r, comments=True)),
        ("resiliparse as trafilatura benchmarks it", lambda r: _resiliparse_text(r, main_content=True)),
        ("trafilatura no_fallback, in-process", _trafilatura_fast),
    ]
    rows = []
    for label, fn in extractors:
        fn(pages[0].html)  # pay lazy imports and first-use costs before timing
        start = time.perf_counter()
        scores, per_page = run_extractor(fn, pages)
        rows.append(_row(label, scores, time.perf_counter() - start, per_page))

    start = time.perf_counter()
    texts = datatrove_texts(pages)
    elapsed = time.perf_counter() - start
    # run_extractor only looks the text up here; the timing above covers the real work
    scores, per_page = run_extractor(lambda raw, _it=iter(pages): texts.get(next(_it).file), pages)
    rows.append(_row("datatrove Trafilatura() defaults", scores, elapsed, per_page))
    return rows


def _row(label, scores, seconds, per_page) -> dict:
    return {
        "extractor": label,
        **scores.as_dict(),
        "seconds": seconds,
        "ms_per_page": 1000 * seconds / max(scores.pages, 1),
        "failed_pages": [p.file for p in per_page if p.error or not p.text_chars],
        "page_counts": [(p.file, p.counts) for p in per_page],
    }


def half_split(pages: list[EvalPage]) -> tuple[list[EvalPage], list[EvalPage]]:
    """Deterministic dev / held-out halves (sha1 of the file name) to check the cleaning
    heuristics, tuned on the first half, against pages they were not tuned on."""
    ordered = sorted(pages, key=lambda p: hashlib.sha1(p.file.encode()).hexdigest())
    mid = (len(ordered) + 1) // 2
    return ordered[:mid], ordered[mid:]


def _versions() -> dict[str, str]:
    return versions("resiliparse", "datatrove", "trafilatura")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=default_eval_dir(REPO))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.eval_dir / "evaldata_subset.json").is_file():
        print(f"eval set not found at {args.eval_dir}", file=sys.stderr)
        return 2
    quiet_datatrove()

    pages = load_eval_set(args.eval_dir)
    rows = evaluate_all(pages)
    ref = next(r for r in rows if r["extractor"].startswith("datatrove"))

    header = f"{'extractor':<50} {'prec':>5} {'rec':>5} {'F1':>5} {'acc':>5} {'leak':>5} {'empty':>5} {'ms/pg':>7} {'speed':>6}"
    print(
        f"{len(pages)} pages, {sum(len(p.with_) for p in pages)} with / {sum(len(p.without) for p in pages)} without snippets"
    )
    print(header)
    for r in rows:
        print(
            f"{r['extractor']:<50} {r['precision']:5.3f} {r['recall']:5.3f} {r['f1']:5.3f} {r['accuracy']:5.3f}"
            f" {r['without_leakage']:5.3f} {r['empty']:5d} {r['ms_per_page']:7.1f} {ref['seconds'] / r['seconds']:5.1f}x"
        )
    print("speed: datatrove seconds / row seconds, same run")
    halves = half_split(pages)
    for label, idx in (("dev half", 0), ("held-out half", 1)):
        files = {p.file for p in halves[idx]}
        for r in (rows[0], ref):
            s = aggregate(c for f, c in r["page_counts"] if f in files)
            print(
                f"{label} ({len(files)} pages) {r['extractor']:<40} P={s.precision:.3f} R={s.recall:.3f} F1={s.f1:.3f} leak={s.without_leakage:.3f}"
            )
    for r in rows:
        del r["page_counts"]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "extraction_quality",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": _versions(),
        "eval_set": "trafilatura-eval-html-multilingual (evaldata_subset.json)",
        "pages": len(pages),
        "baseline": ref["extractor"],
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
