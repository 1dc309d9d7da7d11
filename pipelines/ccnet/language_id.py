"""Language id as CCNet's `split_by_lang.Classifier` (lid step of `mine.py`).

fastText on the deduplicated text with newlines removed (CCNet removes them, it does not replace
them with spaces: fastText reads one line), k=1, the label without `__label__`, the probability
rounded to 2 decimals before the threshold test, and the document dropped when that rounded score
is below the threshold. One batched `predict` call per record batch: fastText's C++ loop instead
of one Python call per document. Batched predict returns float32 probabilities where a single
call returns float64; the float32 value widened to float64 is the same number, so rounding in
float64 gives CCNet's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LABEL_PREFIX = "__label__"
ROUNDING = 2


@dataclass(frozen=True, slots=True)
class Prediction:
    language: str
    score: float  # rounded to 2 decimals, as CCNet stores `language_score`


class LanguageIdentifier:
    def __init__(self, model_path: Path) -> None:
        import fasttext

        self.model: Any = fasttext.load_model(str(model_path))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        labels, probs = self.model.predict([t.replace("\n", "") for t in texts], k=1)
        scores = np.round(np.array([p[0] if len(p) else 0.0 for p in probs], dtype=np.float64), ROUNDING)
        return [
            Prediction(language=label[0].replace(LABEL_PREFIX, "") if label else "", score=float(s))
            for label, s in zip(labels, scores, strict=True)
        ]


_CACHE: dict[str, LanguageIdentifier] = {}


def identifier(model_path: Path) -> LanguageIdentifier:
    # Loaded once per worker process and reused by all its tasks.
    key = str(model_path)
    if key not in _CACHE:
        _CACHE[key] = LanguageIdentifier(model_path)
    return _CACHE[key]
