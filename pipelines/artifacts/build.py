"""`redpajama artifacts build`: every model of a bundle from reference corpora on disk.

Order: inputs fingerprinted, then each language's classifiers, DSIR counts, LM and cutoffs, and the
manifest last, so a bundle with a manifest is complete.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redpajama.artifacts.manifest import read_manifest, write_manifest
from redpajama.io.atomic import atomic_path, remove_stale_temps
from redpajama.pipelines.artifacts import classifiers, cutoffs, dsir
from redpajama.pipelines.artifacts.config import BuildConfig
from redpajama.pipelines.artifacts.corpus import fingerprint, iter_documents, sha256_file
from redpajama.pipelines.artifacts.language_model import train_language_model
from redpajama.pipelines.artifacts.perplexity import DocPerplexity


class BundleExistsError(FileExistsError):
    """The output folder already holds files and --overwrite was not given."""


@dataclass
class BuildReport:
    output: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def _prepare(output: Path, overwrite: bool) -> None:
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise BundleExistsError(f"{output} is not empty; pass --overwrite to rebuild it")
        # The old manifest goes first: a half-rebuilt bundle must not claim to be complete.
        old = read_manifest(output)
        (output / "manifest.json").unlink(missing_ok=True)
        for entry in old.get("files", []):
            (output / entry["path"]).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(output)


def build_bundle(config: BuildConfig, output: Path, overwrite: bool = False) -> BuildReport:
    _prepare(output, overwrite)
    sources: dict[str, Any] = {}
    parameters: dict[str, Any] = {
        "dsir_dim": config.dsir_dim,
        "dsir_hash": config.dsir_hash,
        "dsir_num_samples": config.dsir_num_samples,
        "seed": config.seed,
        "languages": {},
    }
    if config.lid:
        lid = Path(config.resolve(config.lid))
        with atomic_path(output / "lid" / lid.name) as temp:
            shutil.copyfile(lid, temp)
        sources["lid"] = {"path": config.lid, "bytes": lid.stat().st_size, "sha256": sha256_file(lid)}

    found_cutoffs: dict[str, tuple[float, float]] = {}
    for lang, spec in sorted(config.languages.items()):
        sources[lang] = {name: fingerprint(src, config) for name, src in sorted(spec.datasets.items())}
        lang_params: dict[str, Any] = {}

        trained = {}
        for clf in spec.classifiers:
            path = output / "classifiers" / lang / f"{clf.name}.model.bin"
            result = classifiers.train_classifier(clf, spec, config, path)
            trained[clf.name] = {
                "label": clf.label,
                "positives": result.positives,
                "negatives": result.negatives,
                "fasttext": result.params,
            }
        if trained:
            lang_params["classifiers"] = trained

        dsir_params = {}
        for dataset in spec.dsir:
            stats = dsir.compute(spec.datasets[dataset], config)
            dsir.save(stats, output / "dsir" / lang, dataset, lang, config.dsir_dim)
            dsir_params[dataset] = {
                "docs": stats.docs,
                "lambda": stats.lam,
                "total": float(stats.counts.sum()),
            }
        if dsir_params:
            lang_params["dsir"] = dsir_params

        if spec.lm:
            lm = train_language_model(spec.lm, spec.datasets[spec.lm.dataset], config, lang, output / "lm")
            lang_params["lm"] = lm.parameters
            if spec.cutoff_sample:
                scorer = DocPerplexity(lm.arpa, lm.sp_model)
                docs = iter_documents(spec.datasets[spec.cutoff_sample], config)
                values = [scorer(doc) for doc in itertools.islice(docs, spec.lm.max_docs)]
                found = cutoffs.percentiles(v for v in values if v is not None)
                if found:
                    found_cutoffs[lang] = found
                    lang_params["cutoffs"] = {
                        "sample": spec.cutoff_sample,
                        "docs": len(values),
                        "p30_p60": found,
                    }
        parameters["languages"][lang] = lang_params

    if found_cutoffs:
        cutoffs.write_cutoffs(output / "cutoffs.csv", found_cutoffs)
    manifest = write_manifest(
        output,
        name=config.name,
        version=config.version,
        sources=sources,
        parameters={**parameters, "config": config_summary(config)},
        # Read back by quality_signals.dsir_features.resolve_hash_mode at signal time.
        # Always recorded, DSIR counts or not: a manifest without it means foreign counts (dsir_features).
        extra={"dsir_hash": config.dsir_hash},
    )
    return BuildReport(output=output, manifest=manifest)


def config_summary(config: BuildConfig) -> dict[str, Any]:
    data = asdict(config)
    data.pop("base_dir", None)
    return data
