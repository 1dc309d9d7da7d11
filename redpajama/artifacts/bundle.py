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

#: CCNet's cutoff.csv values at percentiles 30/60 for RPv2's languages (REFERENCE A.4).
CCNET_CUTOFFS: dict[str, tuple[float, float]] = {
    "en": (340.0, 520.0),
    "de": (370.0, 590.0),
    "fr": (180.0, 330.0),
    "es": (180.0, 290.0),
    "it": (220.0, 360.0),
}


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
            with open(path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    out[row["lang"]] = (float(row["p30"]), float(row["p60"]))
        return out

    @cached_property
    def manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
