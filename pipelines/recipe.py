"""Pipeline recipes: a YAML file naming the inputs, the output and the stages to run in order.

    inputs: [crawl/]              # relative paths resolve from the recipe's folder
    output: out/                  # optional; `redpajama run -o` overrides it
    stages:
      - ingest: {}
      - signals: {}
      - minhash: {thresholds: [0.8]}
      - dedup: {threshold: 0.8}
      - filter: {rules: [gopher], dedup: fuzzy-0.8, output: curated}   # under the run's output

Each stage's keys are the fields of its step class below (the stage command's options, snake
case). Unknown keys and wrongly typed values are errors before anything runs, so a typo never
silently falls back to a default. Every stage runs with the same RunOptions (runner, workers, ...).
"""

from __future__ import annotations

import contextlib
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from redpajama.errors import UserError
from redpajama.pipelines.ccnet import CCNET_MIN_LENGTH
from redpajama.runners.local import RunOptions, RunSummary

SHIPPED = Path(__file__).resolve().parent / "recipes"


@dataclass(kw_only=True)
class IngestStep:
    inputs: tuple[str, ...] = ()  # default: the recipe's inputs
    input_format: str | None = None
    text_field: str | None = None
    snapshot: str | None = None
    extract_timeout: float = 5.0
    main_content: bool = True
    max_error_rate: float = 0.05


@dataclass(kw_only=True)
class CCNetStep:
    artifacts: str | None = None
    lang_threshold: float = 0.5
    hash_group: int = 50
    min_length: int = CCNET_MIN_LENGTH
    keep_languages: tuple[str, ...] | None = None  # None: every language
    per_line_perplexity: bool = False


@dataclass(kw_only=True)
class SignalsStep:
    signals: tuple[str, ...] | None = None  # None: every signal
    ut1_map: str | None = None
    buckets: tuple[str, ...] | None = None
    artifacts: str | None = None
    rpv2_compat: bool = False


@dataclass(kw_only=True)
class MinHashStep:
    thresholds: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7)  # RPv2's four columns
    num_perm: int = 128
    ngram: int = 13
    shingle: str = "word"
    hash: str = "sha1"
    seed: int = 42
    buckets: tuple[str, ...] | None = None


@dataclass(kw_only=True)
class DedupStep:
    exact: bool = False
    threshold: float = 0.8
    keep: str = "min-id"
    partitions: int | None = None
    memory_gb: float = 4.0
    capacity: int | None = None  # exact only
    error_rate: float = 0.01  # exact only
    key: str = "digest"  # exact only
    buckets: tuple[str, ...] | None = None  # exact only


@dataclass(kw_only=True)
class FilterStep:
    output: str  # the curated tree, relative to the run's output folder
    rules: tuple[str, ...] = ()  # shipped rule sets or YAML files (from the recipe's folder)
    extra_rules: tuple[str, ...] = ()  # inline "name=SQL" rules
    dedup: tuple[str, ...] = ()  # a duplicates/ mode, or [exact, fuzzy-<t>] combined
    keep_dropped: bool = False


@dataclass(kw_only=True)
class ExportStep:
    output: str | None = None  # relative to the run's output folder; default export/rpv2


STEPS: dict[str, type] = {
    "ingest": IngestStep,
    "ccnet": CCNetStep,
    "signals": SignalsStep,
    "minhash": MinHashStep,
    "dedup": DedupStep,
    "filter": FilterStep,
    "export": ExportStep,
}


@dataclass(kw_only=True)
class Recipe:
    source: Path  # the recipe file: relative paths resolve from its folder
    inputs: tuple[str, ...] = ()
    output: str | None = None
    stages: list[tuple[str, Any]] = field(default_factory=list)

    def path(self, value: str) -> str:
        return str(self.source.parent / value) if not Path(value).is_absolute() else value


def find(spec: str | Path) -> Path:
    """A recipe file, or the name of a shipped one (`quick`, `rpv2`)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = SHIPPED / f"{spec}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
    raise UserError(f"no recipe {spec}", f"give a YAML file or a shipped recipe: {names}")


def load(spec: str | Path) -> Recipe:
    path = find(spec)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe is a mapping with inputs, output and stages")
    _no_unknown(path, "the recipe", data, {"inputs", "output", "stages"})
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UserError(f"{path}: `stages` must be a non-empty list, e.g. [ingest: {{}}, signals: {{}}]")
    recipe = Recipe(
        source=path.resolve(),
        inputs=_value(path, "inputs", data.get("inputs", ()), tuple[str, ...]),
        output=_value(path, "output", data.get("output"), str | None),
    )
    for entry in stages:
        if isinstance(entry, str):  # `- signals` with no options
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise UserError(f"{path}: each stage is `- NAME: {{options}}`, got {entry!r}")
        [(name, options)] = entry.items()
        if name not in STEPS:
            raise UserError(f"{path}: unknown stage {name!r}", f"known: {', '.join(STEPS)}")
        recipe.stages.append((name, _step(path, name, options or {})))
    return recipe


def _no_unknown(path: Path, where: str, data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"{path}: {where}: unknown key(s) {', '.join(map(str, unknown))}",
            f"known: {', '.join(sorted(known))}",
        )


def _step(path: Path, name: str, options: Any) -> Any:
    cls = STEPS[name]
    if not isinstance(options, dict):
        raise UserError(f"{path}: stage {name}: options must be a mapping, got {options!r}")
    _no_unknown(path, f"stage {name}", options, {f.name for f in fields(cls)})
    hints = typing.get_type_hints(cls)
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [m for m in missing if m not in options]
    if missing:
        raise UserError(f"{path}: stage {name}: missing key(s) {', '.join(missing)}")
    return cls(**{k: _value(path, f"{name}.{k}", v, hints[k]) for k, v in options.items()})


def _value(path: Path, where: str, value: Any, kind: Any) -> Any:
    """`value` checked against a field type (scalars, optional, tuple[X, ...]); lists become tuples."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(path, where, value, inner)
    if origin is tuple:
        if isinstance(value, str):  # `rules: gopher` reads as a one-item list
            value = [value]
        if not isinstance(value, list | tuple):
            raise UserError(f"{path}: {where}: expected a list, got {value!r}")
        return tuple(_value(path, where, v, args[0]) for v in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # `snapshot: 2023` is a name, not a number
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{path}: {where}: expected {kind.__name__}, got {value!r}")
    return value


# --- running ---------------------------------------------------------------------------------


def run(
    recipe: Recipe,
    output: Path | None,
    options: RunOptions,
    echo: Callable[[str], None] = print,
) -> list[tuple[str, RunSummary]]:
    """Run the recipe's stages in order; stops at the first stage with failed tasks."""
    root = output if output is not None else Path(recipe.path(recipe.output)) if recipe.output else None
    if root is None:
        raise UserError(f"{recipe.source}: the recipe names no output", "give one with -o OUT")
    with _engine_session(options):
        return _run_stages(recipe, root, options, echo)


def _engine_session(options: RunOptions) -> contextlib.AbstractContextManager[None]:
    # One Ray for the whole pipeline: starting a local Ray costs seconds, once per stage otherwise.
    if options.runner == "ray":
        from redpajama.runners.ray_engine import session

        return session(options)
    return contextlib.nullcontext()


def _run_stages(
    recipe: Recipe, root: Path, options: RunOptions, echo: Callable[[str], None]
) -> list[tuple[str, RunSummary]]:
    done: list[tuple[str, RunSummary]] = []
    for name, step in recipe.stages:
        summary = _RUNNERS[name](recipe, step, root, options)
        done.append((name, summary))
        stats = summary.stats
        echo(
            f"{name}: {summary.tasks_run} task(s) done, {summary.tasks_skipped} already done, "
            f"{len(summary.failed)} failed; {stats.docs_in:,} rows in, {stats.docs_out:,} out "
            f"in {summary.seconds:.1f}s"
        )
        if summary.failed:
            break
        if name == "ingest" and summary.error_rate > step.max_error_rate:
            summary.failed["_error_rate"] = (
                f"bad records {summary.error_rate:.2%} above max_error_rate {step.max_error_rate:.2%}"
            )
            break
    return done


def _ingest(recipe: Recipe, step: IngestStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.io.readers.base import ReadOptions
    from redpajama.pipelines import ingest

    inputs = [recipe.path(p) for p in (step.inputs or recipe.inputs)]
    if not inputs:
        raise UserError(f"{recipe.source}: ingest has no inputs", "add `inputs:` to the recipe")
    read = ReadOptions(
        text_field=step.text_field,
        extract_timeout=step.extract_timeout,
        main_content=step.main_content,
        snapshot=step.snapshot,
    )
    config = ingest.IngestConfig(read=read, input_format=step.input_format, snapshot=step.snapshot)
    return ingest.run(inputs, root, config, options)


def _optional_path(recipe: Recipe, value: str | None) -> str | None:
    return recipe.path(value) if value else None


def _ccnet(recipe: Recipe, step: CCNetStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines.ccnet import stage

    config = stage.CCNetConfig(
        artifacts=_optional_path(recipe, step.artifacts),
        lang_threshold=step.lang_threshold,
        hash_group=step.hash_group,
        min_length=step.min_length,
        keep_languages=step.keep_languages,
        per_line_perplexity=step.per_line_perplexity,
    )
    return stage.run(root, config, options)


def _signals(recipe: Recipe, step: SignalsStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines import signals

    config = signals.SignalsConfig(
        names=step.signals,
        ut1_map=_optional_path(recipe, step.ut1_map),
        buckets=step.buckets,
        artifacts=_optional_path(recipe, step.artifacts),
        rpv2_compat=step.rpv2_compat,
    )
    return signals.run(root, config, options)


def _minhash(recipe: Recipe, step: MinHashStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines import minhash

    config = minhash.MinHashConfig(
        thresholds=step.thresholds,
        num_perm=step.num_perm,
        ngram=step.ngram,
        shingle=step.shingle,  # type: ignore[arg-type]  # checked by validate()
        hash=step.hash,  # type: ignore[arg-type]
        seed=step.seed,
        buckets=step.buckets,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(f"{recipe.source}: minhash: {exc}") from exc
    return minhash.run(root, config, options)


def _dedup(recipe: Recipe, step: DedupStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines.dedup import config as cfg

    try:
        if step.exact:
            from redpajama.pipelines.dedup import exact

            exact_config = cfg.ExactConfig(
                capacity=step.capacity, error_rate=step.error_rate, key=step.key, buckets=step.buckets
            )
            return exact.run(root, exact_config, options)
        fuzzy_config = cfg.FuzzyConfig(
            threshold=step.threshold, keep=step.keep, partitions=step.partitions, memory_gb=step.memory_gb
        )
    except ValueError as exc:
        raise UserError(f"{recipe.source}: dedup: {exc}") from exc
    from redpajama.pipelines.dedup import stage

    return stage.run(root, fuzzy_config, options)


def _filter(recipe: Recipe, step: FilterStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines import filter as stage
    from redpajama.pipelines.rules import resolve

    rules = [r if not r.endswith((".yaml", ".yml")) else recipe.path(r) for r in step.rules]
    chosen = resolve(rules, step.extra_rules)
    if not chosen and not step.dedup:
        raise UserError(f"{recipe.source}: filter has nothing to do", "give rules, extra_rules or dedup")
    config = stage.FilterConfig(
        source=str(root), rules=tuple(chosen), dedup=step.dedup, keep_dropped=step.keep_dropped
    )
    summary, _ = stage.run(root / step.output, config, options)
    return summary


def _export(recipe: Recipe, step: ExportStep, root: Path, options: RunOptions) -> RunSummary:
    from redpajama.pipelines import export

    return export.run(root, root / step.output if step.output else None, options)


_RUNNERS: dict[str, Callable[[Recipe, Any, Path, RunOptions], RunSummary]] = {
    "ingest": _ingest,
    "ccnet": _ccnet,
    "signals": _signals,
    "minhash": _minhash,
    "dedup": _dedup,
    "filter": _filter,
    "export": _export,
}
