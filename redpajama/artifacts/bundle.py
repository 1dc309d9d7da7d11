"""An artifact bundle: every model the ccnet stage and the ML signals load, in one folder.

Layout (RPv2's artifact layout where it has one, ../shared/REFERENCE.md A.5):

    <bundle>/manifest.json                                   name, version, files (path, bytes, sha256), sources, parameters
    <bundle>/lid/lid.176.bin | lid.176.ftz                   fastText language id
    <bundle>/lm/<lang>.arpa | <lang>.arpa.bin                KenLM 5-gram model (CCNet's Wikipedia LMs)
    <bundle>/lm/<lang>.sp.model                              SentencePiece model the LM was trained on
    <bundle>/cutoffs.csv                                     lang,p30,p60 perplexity cutoffs (head < p30 <= middle < p60 <= tail)
    <bundle>/classifiers/<lang>/<name>.model.bin             fastText quality classifiers (wikiref, palm, wikipedia)
    <bundle>/dsir/<lang>/<dataset>.<lang>.10000.counts.npy   DSIR hashed n-gram counts (wikipedia, books, openwebtext, ccnet)
    <bundle>/dsir/<lang>/<dataset>.<lang>.lambda.npy         mean raw-word count per document of that dataset

A missing file means "no model": the signals that need it are null, and the ccnet stage says
which file it wanted. `Bundle.default()` is the small bundle shipped in the package (trained on
the project's small public corpora; see its manifest), so the demo and tests run offline.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from redpajama.errors import UserError

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"
ENV_VAR = "REDPAJAMA_ARTIFACTS"  # a bundle folder to use instead of the shipped default

#: cc_net's `cc_net/data/cutoff.csv` (MIT licence, Facebook; the copy vendored in RedPajama-Data,
#: `data_prep/cc/cc_net/cc_net/data/cutoff.csv`) at percentiles 30 and 60: every language cc_net
#: buckets, as its PerplexityBucket does for any language with a model (REFERENCE A.4).
CCNET_CUTOFFS: dict[str, tuple[float, float]] = {
    "de": (370.0, 590.0), "it": (220.0, 360.0), "fr": (180.0, 330.0), "nl": (430.0, 650.0),
    "pl": (160.0, 260.0), "pt": (170.0, 270.0), "es": (180.0, 290.0), "no": (430.0, 680.0),
    "da": (380.0, 600.0), "id": (600.0, 970.0), "lt": (190.0, 270.0), "fi": (1110.0, 1500.0),
    "en": (340.0, 520.0), "hu": (80.0, 140.0), "ro": (180.0, 270.0), "ko": (920.0, 2130.0),
    "ar": (490.0, 790.0), "bn": (190.0, 300.0), "fa": (370.0, 700.0), "ru": (210.0, 310.0),
    "uk": (140.0, 220.0), "ml": (2430.0, 3220.0), "my": (2530.0, 3040.0), "lv": (1130.0, 1480.0),
    "is": (850.0, 1190.0), "ca": (210.0, 330.0), "ne": (860.0, 1130.0), "et": (1270.0, 1620.0),
    "hy": (750.0, 1080.0), "ja": (1110.0, 1450.0), "hr": (720.0, 910.0), "hi": (480.0, 790.0),
    "az": (600.0, 950.0), "el": (450.0, 670.0), "cs": (820.0, 1140.0), "bg": (450.0, 680.0),
    "he": (1280.0, 1710.0), "zh": (1460.0, 1950.0), "ka": (910.0, 1310.0), "km": (1040.0, 2180.0),
    "gu": (1110.0, 1570.0), "mk": (530.0, 740.0), "kn": (2210.0, 2800.0), "mr": (1380.0, 1870.0),
    "af": (540.0, 770.0), "mn": (680.0, 1010.0), "kk": (610.0, 930.0), "be": (670.0, 910.0),
}  # fmt: skip


def read_cutoffs(path: Path) -> dict[str, tuple[float, float]]:
    """A cutoffs file: ours (`lang,p30,p60` rows) or cc_net's own `cutoff.csv` (one row per
    percentile 0..100, one column per language), of which the 30 and 60 rows are read."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    if header[:3] == ["lang", "p30", "p60"]:
        return {r[0]: (float(r[1]), float(r[2])) for r in rows[1:] if r}
    by_percentile = {r[0].strip(): r[1:] for r in rows[1:] if r}
    if header[0] == "" and {"30", "60"} <= set(by_percentile):
        return {
            lang: (float(p30), float(p60))
            for lang, p30, p60 in zip(header[1:], by_percentile["30"], by_percentile["60"], strict=True)
        }
    raise ValueError(
        f"{path}: not a cutoffs file: expected a `lang,p30,p60` header or cc_net's cutoff.csv "
        "(percentile rows 0..100, one column per language)"
    )


@dataclass(frozen=True)
class Bundle:
    root: Path

    @classmethod
    def default(cls) -> Bundle:
        return cls.at(os.environ.get(ENV_VAR) or DEFAULT_BUNDLE)

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None) -> Bundle:
        """The bundle folder `path` (None: the default). A folder that does not exist is an error:
        every model in it would silently be missing and its signals null."""
        if not path:
            return cls.default()
        root = Path(path)
        if not root.is_dir():
            raise UserError(
                f"artifact bundle {root} is not a folder",
                hint="point --artifacts (or REDPAJAMA_ARTIFACTS) at a bundle; `redpajama artifacts list` shows one",
            )
        return cls(root)

    def _first(self, *relative: str) -> Path | None:
        for rel in relative:
            path = self.root / rel
            if path.is_file():
                return path
        return None

    def lid_model(self) -> Path | None:
        return self._first("lid/lid.176.bin", "lid/lid.176.ftz")

    def language_model(self, lang: str) -> tuple[Path, Path] | None:
        """(KenLM model, SentencePiece model) for `lang`, or None."""
        lm = self._first(f"lm/{lang}.arpa.bin", f"lm/{lang}.arpa", f"lm/{lang}.binary")
        sp = self._first(f"lm/{lang}.sp.model")
        return (lm, sp) if lm and sp else None

    def classifier(self, lang: str, name: str) -> Path | None:
        return self._first(f"classifiers/{lang}/{name}.model.bin")

    def dsir(self, lang: str, dataset: str, dim: int = 10_000) -> tuple[Path, Path] | None:
        """(counts .npy, lambda .npy) of a DSIR dataset for `lang`, or None."""
        counts = self._first(f"dsir/{lang}/{dataset}.{lang}.{dim}.counts.npy")
        lam = self._first(f"dsir/{lang}/{dataset}.{lang}.lambda.npy")
        return (counts, lam) if counts and lam else None

    @cached_property
    def cutoffs(self) -> dict[str, tuple[float, float]]:
        """Perplexity cutoffs per language: the bundle's cutoffs.csv over CCNet's defaults."""
        out = dict(CCNET_CUTOFFS)
        path = self.root / "cutoffs.csv"
        if path.is_file():
            out.update(read_cutoffs(path))
        return out

    @cached_property
    def manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
