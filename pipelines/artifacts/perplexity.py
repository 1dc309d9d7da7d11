"""Perplexity for the builder's checks and cutoffs: exactly the ccnet stage's (one formula).

`DocPerplexity(doc)` is `redpajama.pipelines.ccnet.perplexity`'s value for a document, so cutoffs
computed here bucket the stage's perplexities consistently; `shuffled` scores the same pieces in a
random order, the control a fluent-text model must punish.
"""

from __future__ import annotations

import random
from pathlib import Path

from redpajama.pipelines.ccnet.perplexity import LanguageModel


class DocPerplexity:
    def __init__(self, lm_path: Path, sp_path: Path) -> None:
        self.model = LanguageModel.load(lm_path, sp_path)

    def __call__(self, doc: str) -> float | None:
        return self.model.perplexities([doc])[0]

    def shuffled(self, doc: str, rng: random.Random) -> float | None:
        (tokenized,) = self.model.tokenize([doc])
        lines = []
        for line in tokenized.split("\n"):
            pieces = line.split()
            rng.shuffle(pieces)
            lines.append(" ".join(pieces))
        return self.model.score_tokenized("\n".join(lines))
