"""fastText quality classifiers exactly as RPv2's `ft_trainer.py` trains them (REFERENCE A.5).

Positives: `num_samples // len(positives)` documents from each positive set under one label;
negatives: as many CCNet documents (`__label__cc`); shuffled; `fasttext.train_supervised` with the
library defaults unless the config overrides some. Text preprocessing equals inference: newlines
become spaces.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redpajama.io.atomic import atomic_path
from redpajama.pipelines.artifacts.config import BuildConfig, ClassifierConfig, LanguageConfig
from redpajama.pipelines.artifacts.corpus import iter_documents

NEGATIVE_LABEL = "__label__cc"

# fastText 0.9.2 supervised defaults, recorded in the manifest so a reader needs no fastText source.
FASTTEXT_DEFAULTS: dict[str, Any] = {
    "lr": 0.1,
    "dim": 100,
    "ws": 5,
    "epoch": 5,
    "minCount": 1,
    "minCountLabel": 0,
    "minn": 0,
    "maxn": 0,
    "neg": 5,
    "wordNgrams": 1,
    "loss": "softmax",
    "bucket": 2_000_000,
    "thread": 12,
    "lrUpdateRate": 100,
    "t": 0.0001,
    "label": "__label__",
    "pretrainedVectors": "",
}


def preprocess(text: str) -> str:
    """RPv2's inference-side text: `" ".join(raw_content.splitlines()).strip()`."""
    return " ".join(text.splitlines()).strip()


@dataclass(frozen=True)
class TrainedClassifier:
    path: Path
    positives: dict[str, int]  # dataset -> documents used
    negatives: int
    params: dict[str, Any]


def _take(docs: Iterable[str], n: int) -> list[str]:
    return [d for d in (preprocess(doc) for doc in itertools.islice(docs, n)) if d]


def sample_training_set(
    spec: ClassifierConfig, lang: LanguageConfig, config: BuildConfig
) -> tuple[dict[str, list[str]], list[str]]:
    """Balanced positives per set and as many negatives, each the first documents of its corpus."""
    share = max(1, spec.num_samples // len(spec.positives))
    positives = {name: _take(iter_documents(lang.datasets[name], config), share) for name in spec.positives}
    total = sum(len(docs) for docs in positives.values())
    negatives = _take(iter_documents(lang.datasets["ccnet"], config), total)
    if len(negatives) < total:
        # Fewer negatives than positives: trim every positive set by the same ratio to stay balanced.
        ratio = len(negatives) / total
        positives = {name: docs[: int(len(docs) * ratio)] for name, docs in positives.items()}
        negatives = negatives[: sum(len(d) for d in positives.values())]
    return positives, negatives


def train_classifier(
    spec: ClassifierConfig, lang: LanguageConfig, config: BuildConfig, output: Path
) -> TrainedClassifier:
    positives, negatives = sample_training_set(spec, lang, config)
    if not negatives:
        raise ValueError(f"classifier {spec.name}: no training documents (positives or ccnet empty)")
    lines = [f"{spec.label} {doc}" for docs in positives.values() for doc in docs]
    lines += [f"{NEGATIVE_LABEL} {doc}" for doc in negatives]
    random.Random(config.seed).shuffle(lines)  # RPv2: `shuf`
    params = {**FASTTEXT_DEFAULTS, **spec.fasttext}
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with atomic_path(output) as temp:
            _train_isolated(train_file, spec, temp)
    recorded = {**params, "quantize": spec.quantize, "quantize_cutoff": spec.quantize_cutoff}
    return TrainedClassifier(
        path=output,
        positives={name: len(docs) for name, docs in positives.items()},
        negatives=len(negatives),
        params=recorded,
    )


def _fit_and_save(train_file: str, fasttext_params: dict, quantize: bool, cutoff: int, output: str) -> None:
    import fasttext

    # verbose=0 only silences progress output; it does not change training.
    model = fasttext.train_supervised(input=train_file, **{"verbose": 0, **fasttext_params})
    if quantize:
        model.quantize(input=train_file, retrain=False, cutoff=cutoff)
    model.save_model(output)


def _train_isolated(train_file: Path, spec: ClassifierConfig, output: Path, attempts: int = 3) -> None:
    """Train in a fresh process, retrying on fastText's "Encountered NaN".

    The fastText build we use (fasttext-numpy2-wheel 0.9.2) sometimes diverges to NaN in a process
    that has already run other native code, while the same file and parameters train cleanly in a
    fresh one; a spawned child gives every training run that clean state.
    """
    context = multiprocessing.get_context("spawn")
    for attempt in range(1, attempts + 1):
        with context.Pool(1) as pool:
            try:
                pool.apply(
                    _fit_and_save,
                    (str(train_file), dict(spec.fasttext), spec.quantize, spec.quantize_cutoff, str(output)),
                )
                return
            except RuntimeError as exc:
                if "NaN" not in str(exc) or attempt == attempts:
                    raise


def score(model: Any, text: str) -> float:
    """RPv2's classifier score: P(high-quality class) of a binary model."""
    labels, probs = model.predict(preprocess(text))
    prob = float(probs[0])
    return 1.0 - prob if labels[0] == NEGATIVE_LABEL else prob
