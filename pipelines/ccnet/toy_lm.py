"""A small bigram backoff language model in ARPA format, for tests and benchmarks.

Real bundles carry CCNet's Wikipedia 5-grams (built with KenLM's `lmplz`, which pip's kenlm does
not include). This writes a KenLM-loadable model from already tokenized lines with absolute
discounting and backoff to unigrams, so the ccnet stage can be exercised end to end offline.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

DISCOUNT = 0.75


def write_arpa(lines: Iterable[str], path: Path) -> Path:
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for line in lines:
        tokens = ["<s>", *line.split(), "</s>"]
        unigrams.update(tokens[1:])
        bigrams.update(zip(tokens, tokens[1:], strict=False))
    total = sum(unigrams.values()) + 1  # one count of probability for <unk>
    uni = {w: c / total for w, c in unigrams.items()}
    uni["<unk>"] = 1 / total
    history: Counter[str] = Counter()
    followers: dict[str, list[str]] = {}
    for (h, w), c in bigrams.items():
        history[h] += c
        followers.setdefault(h, []).append(w)
    backoff: dict[str, float] = {}
    for h, ws in followers.items():
        left = DISCOUNT * len(ws) / history[h]
        unseen = max(1.0 - sum(uni[w] for w in ws), 1e-9)
        backoff[h] = math.log10(max(left / unseen, 1e-9))
    words = sorted({*uni, "<s>"})
    out = [
        "\\data\\",
        f"ngram 1={len(words)}",
        f"ngram 2={len(bigrams)}",
        "",
        "\\1-grams:",
    ]
    for w in words:
        prob = -99.0 if w == "<s>" else math.log10(uni[w])
        out.append(f"{prob:.6f}\t{w}\t{backoff.get(w, 0.0):.6f}")
    out += ["", "\\2-grams:"]
    for (h, w), c in sorted(bigrams.items()):
        out.append(f"{math.log10((c - DISCOUNT) / history[h]):.6f}\t{h} {w}")
    out += ["", "\\end\\", ""]
    path.write_text("\n".join(out), encoding="utf-8")
    return path
