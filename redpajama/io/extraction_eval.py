"""Score HTML main-content extraction against trafilatura's hand-annotated evaluation set.

Scoring follows trafilatura's own benchmark (adbar/trafilatura `tests/eval_common.py`, used by
`tests/evaluate.py`): every `with` snippet found in the output is a true positive (else a false
negative), every `without` snippet found is a false positive (else a true negative); whitespace is
collapsed on both sides before the substring test; counts are summed over all pages before
precision/recall/accuracy/F1 are taken (micro average). An extractor that raises or returns None
scores as a full miss, as there. Pure functions only: no timing, no printing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EVAL_SET_PARTS = ("shared", "data", "trafilatura-eval-html-multilingual")

_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class EvalPage:
    url: str
    file: str
    html: bytes  # raw bytes: pages come in many encodings and the extractor must cope
    with_: tuple[str, ...]
    without: tuple[str, ...]


@dataclass(slots=True)
class Counts:
    tp: int = 0  # `with` snippet found
    fp: int = 0  # `without` snippet leaked
    fn: int = 0  # `with` snippet missing
    tn: int = 0  # `without` snippet absent

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn


@dataclass(frozen=True, slots=True)
class Scores:
    pages: int
    errors: int  # pages where the extractor raised
    empty: int  # pages with no text out (trafilatura's "skipped instances")
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    accuracy: float
    f1: float
    with_recall: float  # share of `with` snippets kept (same as recall, kept for explicitness)
    without_leakage: float  # share of `without` snippets that leaked into the output

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_eval_dir(repo_root: str | Path) -> Path:
    """The eval set sits in the shared data folder next to the repository checkout."""
    return Path(repo_root).resolve().parent.joinpath(*EVAL_SET_PARTS)


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip()


def load_eval_set(eval_dir: str | Path) -> list[EvalPage]:
    """Pages listed in `evaldata_subset.json` whose html file is present, in file order."""
    eval_dir = Path(eval_dir)
    meta = json.loads((eval_dir / "evaldata_subset.json").read_text(encoding="utf-8"))
    pages = []
    for url, item in meta.items():
        path = eval_dir / "html" / item["file"]
        if not path.is_file():
            continue
        pages.append(
            EvalPage(
                url=url,
                file=item["file"],
                html=path.read_bytes(),
                with_=tuple(item.get("with", ())),
                without=tuple(item.get("without", ())),
            )
        )
    return pages


def score_page(page: EvalPage, text: str | None) -> Counts:
    if not isinstance(text, str):
        return Counts(fn=len(page.with_), tn=len(page.without))
    out = normalize(text)
    tp = sum(1 for s in page.with_ if normalize(s) in out)
    fp = sum(1 for s in page.without if normalize(s) in out)
    return Counts(tp=tp, fp=fp, fn=len(page.with_) - tp, tn=len(page.without) - fp)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def aggregate(counts: Iterable[Counts], *, errors: int = 0, empty: int = 0) -> Scores:
    total = Counts()
    pages = 0
    for c in counts:
        total.add(c)
        pages += 1
    tp, fp, fn, tn = total.tp, total.fp, total.fn, total.tn
    recall = _ratio(tp, tp + fn)
    return Scores(
        pages=pages,
        errors=errors,
        empty=empty,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=_ratio(tp, tp + fp),
        recall=recall,
        accuracy=_ratio(tp + tn, tp + tn + fp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        with_recall=recall,
        without_leakage=_ratio(fp, fp + tn),
    )


@dataclass(slots=True)
class PageResult:
    file: str
    counts: Counts
    error: str | None
    text_chars: int


def run_extractor(
    extractor: Callable[[bytes], str | None], pages: Iterable[EvalPage]
) -> tuple[Scores, list[PageResult]]:
    """Run `extractor(html_bytes) -> text` on every page; a raise counts as a full miss."""
    per_page: list[PageResult] = []
    errors = empty = 0
    for page in pages:
        error = None
        try:
            text = extractor(page.html)
        except Exception as exc:  # a crashing extractor is scored, not fatal
            text, error = None, f"{type(exc).__name__}: {exc}"
            errors += 1
        if not text:
            empty += 1
        per_page.append(PageResult(page.file, score_page(page, text), error, len(text or "")))
    scores = aggregate((r.counts for r in per_page), errors=errors, empty=empty)
    return scores, per_page
