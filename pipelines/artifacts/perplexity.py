"""CCNet's document perplexity with a KenLM model and its SentencePiece model (REFERENCE A.4)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from redpajama.pipelines.artifacts.lm_text import ccnet_normalizer, tokenize_lines


class DocPerplexity:
    """`perplexity = 10^(-sum log10 P(line) / sum (pieces(line) + 1))`, rounded to 1 decimal."""

    def __init__(self, lm_path: Path, sp_path: Path, normalize: Callable[[str], str] | None = None):
        import kenlm
        import sentencepiece as spm

        self.lm = kenlm.Model(str(lm_path))
        self.sp = spm.SentencePieceProcessor(model_file=str(sp_path))
        self.normalize = normalize or ccnet_normalizer()[0]

    def lines(self, doc: str) -> list[str]:
        return tokenize_lines(self.sp, doc, self.normalize)

    def of_lines(self, lines: list[str]) -> float | None:
        log_score = sum(self.lm.score(line) for line in lines)
        length = sum(len(line.split()) + 1 for line in lines)
        return round(10.0 ** (-log_score / length), 1) if length else None

    def __call__(self, doc: str) -> float | None:
        return self.of_lines(self.lines(doc))

    def shuffled(self, doc: str, rng: random.Random) -> float | None:
        """Perplexity of the same pieces in a random order: what a fluent-text model must punish."""
        out = []
        for line in self.lines(doc):
            pieces = line.split()
            rng.shuffle(pieces)
            out.append(" ".join(pieces))
        return self.of_lines(out)
