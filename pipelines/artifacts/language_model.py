"""CCNet-style perplexity model for one language: SentencePiece, then a 5-gram KN ARPA, then a check.

The check is the one property a perplexity filter relies on: held-out clean text must score far
lower than the same pieces shuffled.
"""

from __future__ import annotations

import itertools
import random
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redpajama.io.atomic import atomic_path, write_bytes
from redpajama.pipelines.artifacts import kneser_ney, lmplz
from redpajama.pipelines.artifacts.config import BuildConfig, LanguageModelConfig, SourceConfig
from redpajama.pipelines.artifacts.corpus import iter_documents
from redpajama.pipelines.artifacts.lm_text import normalized_lines, train_sentencepiece
from redpajama.pipelines.artifacts.perplexity import DocPerplexity
from redpajama.pipelines.ccnet.normalize import normalize


@dataclass(frozen=True)
class TrainedLM:
    arpa: Path
    sp_model: Path
    parameters: dict[str, Any]


def _split(docs: list[str], heldout: int) -> tuple[list[str], list[str]]:
    # Never hold out more than a tenth: a tiny corpus still needs most of itself to train on.
    heldout = min(heldout, len(docs) // 10)
    return (docs[: len(docs) - heldout], docs[len(docs) - heldout :]) if heldout else (docs, [])


def train_language_model(
    spec: LanguageModelConfig, source: SourceConfig, config: BuildConfig, lang: str, lm_dir: Path
) -> TrainedLM:
    import sentencepiece as spm

    docs = list(itertools.islice(iter_documents(source, config), spec.max_docs))
    train_docs, heldout_docs = _split(docs, spec.heldout_docs)
    if not train_docs:
        raise ValueError(f"lm {lang}: dataset {spec.dataset!r} has no documents")

    sp_path = lm_dir / f"{lang}.sp.model"
    sp_bytes = train_sentencepiece(normalized_lines(train_docs, normalize), spec.vocab_size, spec.model_type)
    write_bytes(sp_path, sp_bytes)
    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    sentences = [sp.encode_as_pieces(line) for line in normalized_lines(train_docs, normalize)]

    arpa_path = lm_dir / f"{lang}.arpa"
    use_lmplz = spec.estimator == "lmplz" or (spec.estimator == "auto" and lmplz.find_lmplz())
    counts: list[int] = []
    discounts: list[Any] = []
    with atomic_path(arpa_path) as temp:
        if use_lmplz:
            with tempfile.TemporaryDirectory() as tmp:
                text = Path(tmp) / "train.txt"
                text.write_text("\n".join(" ".join(s) for s in sentences) + "\n", encoding="utf-8")
                lmplz.run_lmplz(text, temp, spec.order, spec.prune)
        else:
            model = kneser_ney.estimate(sentences, spec.order, spec.prune)
            kneser_ney.write_arpa(model, temp)
            counts, discounts = model.counts(), [list(d) for d in model.discounts]

    parameters: dict[str, Any] = {
        "dataset": spec.dataset,
        "order": spec.order,
        "vocab_size": spec.vocab_size,
        "sp_pieces": sp.get_piece_size(),
        "model_type": spec.model_type,
        "prune_min_counts": list(spec.prune),
        "estimator": "lmplz" if use_lmplz else "python-modified-kneser-ney",
        "normalizer": "redpajama.pipelines.ccnet.normalize.normalize",
        "train_docs": len(train_docs),
        "train_lines": len(sentences),
        "train_pieces": sum(len(s) for s in sentences),
        "ngram_counts": counts,
        "discounts": discounts,
    }
    parameters["validation"] = validate(arpa_path, sp_path, heldout_docs, spec.seed)
    return TrainedLM(arpa=arpa_path, sp_model=sp_path, parameters=parameters)


def validate(arpa: Path, sp_model: Path, docs: list[str], seed: int) -> dict[str, Any]:
    """Median document perplexity of held-out docs, as written and with their pieces shuffled."""
    if not docs:
        return {"heldout_docs": 0}
    scorer = DocPerplexity(arpa, sp_model)
    rng = random.Random(seed)
    clean = [p for p in map(scorer, docs) if p is not None]
    shuffled = [p for p in (scorer.shuffled(d, rng) for d in docs) if p is not None]
    return {
        "heldout_docs": len(docs),
        "median_perplexity": round(statistics.median(clean), 1),
        "median_perplexity_shuffled": round(statistics.median(shuffled), 1),
    }
