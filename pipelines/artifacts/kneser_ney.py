"""Interpolated modified Kneser-Ney n-gram estimation written as an ARPA file KenLM loads.

For corpora that fit in memory (the demo bundle, tests); `lmplz` is the tool for Wikipedia-sized
text. Follows Chen & Goodman / KenLM's `lmplz`:

* adjusted counts: raw counts for the highest order and for n-grams starting with <s> (nothing can
  precede them), otherwise the number of distinct left extensions (continuation counts);
* three discounts per order from the count-of-counts of adjusted counts (D1, D2, D3+);
* p(w|h) = (a(hw) - D(a(hw))) / a(h.) + gamma(h) p(w|h'),  gamma(h) = sum D / a(h.);
  unigrams interpolate with the uniform distribution over the vocabulary (<unk> gets only that mass);
* because the ARPA stores interpolated probabilities, the backoff weight of h is exactly gamma(h).

Count pruning drops n-grams of order k with raw count < prune[k-1]; with non-decreasing thresholds
every kept n-gram keeps its prefix and suffix. Backoff weights of contexts that lost extensions are
recomputed so that every conditional distribution still sums to one (SRILM's renormalization).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
Gram = tuple[int, ...]


@dataclass
class KneserNeyModel:
    order: int
    vocab: list[str]  # id -> token; 0 = <s>, 1 = </s>, 2 = <unk>
    logprob: list[dict[Gram, float]]  # per order (index 0 = unigrams): log10 p
    backoff: list[dict[Gram, float]]  # per order: log10 backoff of the n-gram as a context
    discounts: list[tuple[float, float, float]] = field(default_factory=list)

    def counts(self) -> list[int]:
        return [len(table) for table in self.logprob]


def _discounts(adjusted: Iterable[int]) -> tuple[float, float, float]:
    t = Counter(a for a in adjusted if a <= 4)
    t1, t2, t3, t4 = (t.get(k, 0) for k in (1, 2, 3, 4))
    if t1 and t2 and t3 and t4:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for k, dk in enumerate(d, 1)):
            return d
    # Tiny corpora have empty or inconsistent count-of-counts: lmplz's --discount_fallback values.
    return (0.5, 1.0, 1.5)


def _count(sentences: Iterable[Sequence[str]], order: int) -> tuple[list[str], list[Counter[Gram]]]:
    ids: dict[str, int] = {BOS: 0, EOS: 1, UNK: 2}
    raw: list[Counter[Gram]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        seq = [0, *(ids.setdefault(tok, len(ids)) for tok in sentence), 1]
        for n in range(1, order + 1):
            table = raw[n - 1]
            for i in range(len(seq) - n + 1):
                table[tuple(seq[i : i + n])] += 1
    vocab = [""] * len(ids)
    for token, index in ids.items():
        vocab[index] = token
    return vocab, raw


def _adjusted(raw: list[Counter[Gram]]) -> list[dict[Gram, int]]:
    order = len(raw)
    adjusted: list[dict[Gram, int]] = [dict() for _ in range(order)]
    adjusted[-1] = dict(raw[-1])
    for n in range(order - 1, 0, -1):  # n = length of the lower n-grams
        continuation: Counter[Gram] = Counter(gram[1:] for gram in raw[n])
        adjusted[n - 1] = {g: (c if g[0] == 0 else continuation[g]) for g, c in raw[n - 1].items()}
    return adjusted


def estimate(
    sentences: Iterable[Sequence[str]], order: int = 5, prune: Sequence[int] | None = None
) -> KneserNeyModel:
    """Estimate a KN model from tokenized sentences (without <s>/</s>)."""
    prune = list(prune or [1] * order)
    vocab, raw = _count(sentences, order)
    adjusted = _adjusted(raw)
    # <s> is never predicted: it has no unigram probability mass.
    adjusted[0].pop((0,), None)
    discounts = [_discounts(table.values()) for table in adjusted]
    logprob: list[dict[Gram, float]] = [dict() for _ in range(order)]
    backoff: list[dict[Gram, float]] = [dict() for _ in range(order)]
    prob: dict[Gram, float] = {}

    # Unigrams, interpolated with uniform over the predictable vocabulary (all but <s>, with <unk>).
    d = discounts[0]
    total = sum(adjusted[0].values())
    mass = sum(d[min(a, 3) - 1] for a in adjusted[0].values())
    uniform = (mass / total) / (len(vocab) - 1)
    for token_id in range(1, len(vocab)):
        a = adjusted[0].get((token_id,), 0)
        prob[(token_id,)] = (a - d[min(a, 3) - 1]) / total + uniform if a else uniform

    for n in range(2, order + 1):
        d = discounts[n - 1]
        by_context: dict[Gram, list[Gram]] = defaultdict(list)
        for gram in adjusted[n - 1]:
            by_context[gram[:-1]].append(gram)
        for context, grams in by_context.items():
            counts = [adjusted[n - 1][g] for g in grams]
            total = sum(counts)
            gamma = sum(d[min(a, 3) - 1] for a in counts) / total
            backoff[n - 2][context] = gamma
            for gram, a in zip(grams, counts, strict=True):
                prob[gram] = (a - d[min(a, 3) - 1]) / total + gamma * prob[gram[1:]]

    keep: list[set[Gram]] = [{g for g in prob if len(g) == 1} | {(0,)}]
    keep += [{g for g in adjusted[n] if raw[n][g] >= prune[n]} for n in range(1, order)]
    _renormalize(keep, adjusted, prob, backoff)
    for n in range(order):
        for gram in keep[n]:
            logprob[n][gram] = -99.0 if gram == (0,) else math.log10(prob[gram])
        backoff[n] = {g: math.log10(b) for g, b in backoff[n].items() if g in keep[n] and b > 0}
    return KneserNeyModel(order=order, vocab=vocab, logprob=logprob, backoff=backoff, discounts=discounts)


def _renormalize(
    keep: list[set[Gram]],
    adjusted: list[dict[Gram, int]],
    prob: dict[Gram, float],
    backoff: list[dict[Gram, float]],
) -> None:
    """Backoff weights for contexts whose extensions were pruned: mass left / lower-order mass left."""
    for n in range(1, len(keep)):
        lost = {g[:-1] for g in adjusted[n] if g not in keep[n] and g[:-1] in keep[n - 1]}
        if not lost:
            continue
        high: dict[Gram, float] = defaultdict(float)
        low: dict[Gram, float] = defaultdict(float)
        for gram in keep[n]:
            if gram[:-1] in lost:
                high[gram[:-1]] += prob[gram]
                low[gram[:-1]] += prob[gram[1:]]
        for context in lost:
            backoff[n - 1][context] = max(1.0 - high[context], 1e-12) / max(1.0 - low[context], 1e-12)


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != -99.0 else "-99"


def write_arpa(model: KneserNeyModel, path: Path) -> None:
    """ARPA text, n-grams sorted by their words so equal inputs give identical bytes."""
    vocab = model.vocab
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\n\\data\\\n")
        for n, count in enumerate(model.counts(), 1):
            out.write(f"ngram {n}={count}\n")
        for n in range(model.order):
            out.write(f"\n\\{n + 1}-grams:\n")
            rows = sorted(model.logprob[n].items(), key=lambda item: [vocab[i] for i in item[0]])
            has_backoff = n < model.order - 1
            for gram, lp in rows:
                words = " ".join(vocab[i] for i in gram)
                line = f"{_fmt(lp)}\t{words}"
                if has_backoff and gram in model.backoff[n]:
                    line += f"\t{_fmt(model.backoff[n][gram])}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")
