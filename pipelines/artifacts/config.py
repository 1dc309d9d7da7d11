"""Typed configuration of `redpajama artifacts build`, read from YAML (unknown keys are errors).

Relative paths in the YAML resolve against the YAML file's folder, so a committed config can name
`../../../shared/data/...` and work from any working directory.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Format = Literal["text", "jsonl", "wikitext", "html"]
Unit = Literal["file", "line", "block"]


class ConfigError(ValueError):
    """A config file that does not match the dataclasses below."""


@dataclass(kw_only=True)
class SourceConfig:
    """Where one reference corpus lives and how its files split into documents."""

    paths: list[str] = field(default_factory=list)  # files or globs; JSONL may be gzip-compressed
    format: Format = "text"
    text_field: str = "text"  # jsonl only
    # text/wikitext/html: a document is the whole file, each non-empty line, or each blank-line block
    unit: Unit = "line"
    group: int = 1  # join this many consecutive units into one document
    # Drop shorter documents (RPv1 wikiref kept refs with >= 1000 chars). RPv2's hash_dist counts
    # empty texts too (0 words, one document in lambda's mean): 0 reproduces that.
    min_chars: int = 1
    # A dataset made of several differently formatted sources, read one after the other.
    parts: list[SourceConfig] = field(default_factory=list)


@dataclass(kw_only=True)
class ClassifierConfig:
    """One fastText classifier: positives = `positives` (equal share each) vs the ccnet side."""

    name: str  # palm | wikipedia | wikiref
    label: str  # __label__palm | __label__wikipedia | __label__wiki
    positives: list[str]  # dataset names in `LanguageConfig.datasets`
    num_samples: int = 75_000  # RPv2 CLASSIFIERS_NUM_SAMPLES: positives total; negatives the same
    # Passed to fasttext.train_supervised over library defaults; empty = exactly as RPv2.
    fasttext: dict[str, Any] = field(default_factory=dict)
    # Product-quantize after training (fastText .ftz bytes under the .model.bin name): demo bundles
    # only, RPv2 shipped unquantized models.
    quantize: bool = False
    quantize_cutoff: int = 0


@dataclass(kw_only=True)
class LanguageModelConfig:
    """CCNet-style perplexity model: SentencePiece + 5-gram Kneser-Ney on `dataset`."""

    dataset: str = "wikipedia"
    vocab_size: int = 8000
    model_type: Literal["unigram", "bpe"] = "unigram"  # CCNet's models are unigram
    order: int = 5
    max_docs: int = 500_000
    # Keep an n-gram of order k only if its raw count >= prune[k-1] (non-decreasing; 1 = keep all).
    prune: list[int] = field(default_factory=lambda: [1, 1, 1, 1, 1])
    estimator: Literal["auto", "lmplz", "python"] = "auto"  # auto: lmplz when on PATH
    heldout_docs: int = 200  # last docs of `dataset` kept out of training to validate perplexity
    seed: int = 0


@dataclass(kw_only=True)
class LanguageConfig:
    datasets: dict[str, SourceConfig]  # wikipedia, books, openwebtext, wikiref, ccnet (negatives)
    classifiers: list[ClassifierConfig] = field(default_factory=list)
    dsir: list[str] = field(default_factory=list)  # datasets to count, e.g. [wikipedia, ccnet]
    lm: LanguageModelConfig | None = None
    # Documents whose perplexity percentiles become cutoffs.csv (e.g. a CCNet sample); None: none.
    cutoff_sample: str | None = None


@dataclass(kw_only=True)
class BuildConfig:
    name: str = "redpajama-artifacts"
    version: str = "0.0.0"
    languages: dict[str, LanguageConfig]
    lid: str | None = None  # a lid.176.bin/.ftz file to copy into lid/
    dsir_dim: int = 10_000
    dsir_hash: Literal["stable", "rpv2"] = "stable"
    dsir_num_samples: int = 500_000
    seed: int = 42
    base_dir: Path = Path(".")  # where relative paths resolve (the YAML's folder)

    def resolve(self, path: str) -> str:
        expanded = os.path.expanduser(path)
        return expanded if os.path.isabs(expanded) else str(self.base_dir / expanded)


def _build(cls: type, data: Any, where: str) -> Any:
    """Instantiate dataclass `cls` from plain YAML data, refusing unknown or missing keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {key: _coerce(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list")
        return [_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is Path:
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _validate(config: BuildConfig) -> None:
    for lang, spec in config.languages.items():
        for name, source in spec.datasets.items():
            if bool(source.paths) == bool(source.parts):
                raise ConfigError(f"languages.{lang}.datasets.{name}: give either paths or parts")
        names = set(spec.datasets)
        wanted = [*spec.dsir, *(p for c in spec.classifiers for p in c.positives)]
        if spec.lm:
            wanted.append(spec.lm.dataset)
            prune = spec.lm.prune
            if len(prune) != spec.lm.order or any(a > b for a, b in zip(prune, prune[1:], strict=False)):
                raise ConfigError(f"languages.{lang}.lm.prune: need {spec.lm.order} non-decreasing counts")
        if spec.cutoff_sample:
            wanted.append(spec.cutoff_sample)
            if not spec.lm:
                raise ConfigError(f"languages.{lang}.cutoff_sample needs an lm")
        if spec.classifiers:
            wanted.append("ccnet")
        missing = sorted(set(wanted) - names)
        if missing:
            raise ConfigError(f"languages.{lang}: dataset(s) {missing} used but not under datasets")


def config_from_dict(data: dict[str, Any], base_dir: Path) -> BuildConfig:
    config = _build(BuildConfig, {**data, "base_dir": str(base_dir)}, "config")
    _validate(config)
    return config


def load_config(path: str | os.PathLike[str]) -> BuildConfig:
    path = Path(path)
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    if "base_dir" in data:
        raise ConfigError(f"{path}: base_dir is implied by the file's location")
    return config_from_dict(data, path.resolve().parent)
