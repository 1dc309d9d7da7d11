"""Perplexity as CCNet's `sp` + `lm` steps of `mine.py` (`MultiSentencePiece`, `DocLM`).

CCNet normalizes the *whole* document with `normalize` (which deletes newlines with the other
control characters, gluing the lines together without a space), encodes it with the language's
SentencePiece model as pieces joined by spaces, then scores each "\\n"-separated line of that (so:
one line) with KenLM, bos and eos on:

    perplexity = round(10 ** (-sum(log10 score) / sum(words + 1)), 1)

`per_line=True` is the variant the formula suggests (and RPv2's REFERENCE describes): normalize
and encode each line on its own and sum over lines. It is off by default because RPv2's values
come from `mine.py` as it runs. A language without both models gets no perplexity (null), as in
CCNet, where its documents then land in the bucket "all".
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redpajama.pipelines.ccnet.normalize import normalize


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def perplexity_of(log10_score: float, length: int) -> float:
    """CCNet `pp()` rounded as `DocLM` stores it."""
    return round(10.0 ** (-log10_score / length), 1)


@dataclass
class LanguageModel:
    sp: Any  # sentencepiece.SentencePieceProcessor
    lm: Any  # kenlm.Model

    @classmethod
    def load(cls, lm_path: Path, sp_path: Path) -> LanguageModel:
        import kenlm
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor()
        sp.load(str(sp_path))
        config = kenlm.Config()
        config.show_progress = False
        with _stderr_silenced():  # KenLM prints an ARPA-loading hint to fd 2; errors still raise
            lm = kenlm.Model(str(lm_path), config)
        return cls(sp=sp, lm=lm)

    def tokenize(self, texts: list[str]) -> list[str]:
        """Normalize then encode: CCNet's `tokenized` field, one string per text."""
        normalized = [normalize(t) for t in texts]
        pieces = self.sp.encode(normalized, out_type=str)  # one C++ call for the whole batch
        return [" ".join(p) for p in pieces]

    def score_tokenized(self, tokenized: str) -> float | None:
        """`DocLM.do` on an already tokenized document; None where CCNet sets no perplexity."""
        if not tokenized:
            return None
        log_score, length = 0.0, 0
        for line in tokenized.split("\n"):
            log_score += self.lm.score(line)
            length += len(line.split()) + 1
        return perplexity_of(log_score, length)

    def perplexities(self, texts: list[str], *, per_line: bool = False) -> list[float | None]:
        if not per_line:
            return [self.score_tokenized(t) for t in self.tokenize(texts)]
        out: list[float | None] = []
        for text in texts:
            lines = self.tokenize(text.split("\n"))
            out.append(self.score_tokenized("\n".join(lines)) if text else None)
        return out


_CACHE: dict[tuple[str, str], LanguageModel] = {}


def language_model(lm_path: Path, sp_path: Path) -> LanguageModel:
    # KenLM and SentencePiece models load once per worker process.
    key = (str(lm_path), str(sp_path))
    if key not in _CACHE:
        _CACHE[key] = LanguageModel.load(lm_path, sp_path)
    return _CACHE[key]
