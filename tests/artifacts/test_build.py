from __future__ import annotations

import random
from pathlib import Path

import kenlm
import numpy as np
import pytest
from artifact_helpers import HELDOUT_PAGES, tiny_config_dict, web_source

from redpajama.artifacts.bundle import Bundle
from redpajama.artifacts.manifest import sha256_file, verify
from redpajama.pipelines.artifacts import classifiers
from redpajama.pipelines.artifacts.config import ConfigError, SourceConfig, config_from_dict, load_config
from redpajama.pipelines.artifacts.corpus import iter_documents
from redpajama.pipelines.artifacts.perplexity import DocPerplexity
from redpajama.quality_signals.dsir_features import hashed_counts, resolve_hash_mode
from redpajama.quality_signals.text import word_punct_tokenize


def auc(positive: list[float], negative: list[float]) -> float:
    """P(score of a random positive > score of a random negative), ties counted half."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def test_manifest_lists_every_file_with_its_sha256(tiny_bundle):
    root, manifest = tiny_bundle.output, tiny_bundle.manifest
    paths = {entry["path"] for entry in manifest["files"]}
    assert {
        "lid/lid.176.ftz",
        "classifiers/en/palm.model.bin",
        "dsir/en/wikipedia.en.10000.counts.npy",
        "dsir/en/ccnet.en.lambda.npy",
        "lm/en.sp.model",
        "lm/en.arpa",
        "cutoffs.csv",
    } <= paths
    for entry in manifest["files"]:
        assert sha256_file(root / entry["path"]) == entry["sha256"]
        assert (root / entry["path"]).stat().st_size == entry["bytes"]
    assert verify(root) == []
    assert manifest["name"] == "tiny" and manifest["version"] == "0.0.1" and manifest["created"].endswith("Z")
    assert resolve_hash_mode(manifest) == "stable"
    wiki = manifest["sources"]["en"]["wikipedia"]["files"][0]
    assert wiki["path"] == "lm-wikitext-2-valid-test/valid.txt" and len(wiki["sha256"]) == 64
    params = manifest["parameters"]
    assert params["dsir_dim"] == 10_000 and params["languages"]["en"]["lm"]["order"] == 5
    fasttext_params = params["languages"]["en"]["classifiers"]["palm"]["fasttext"]
    assert fasttext_params["epoch"] == 25 and fasttext_params["lr"] == 0.1  # override + library default
    assert not list(root.rglob(".*tmp-*"))


def test_classifier_separates_heldout_text(tiny_bundle, shared_data, web_split):
    import fasttext

    model = fasttext.load_model(str(Bundle(tiny_bundle.output).classifier("en", "palm")))
    config = config_from_dict(tiny_config_dict(), shared_data)
    wiki = SourceConfig(paths=["lm-wikitext-2-valid-test/test.txt"], format="wikitext", min_chars=200)
    high = [classifiers.score(model, d) for d in list(iter_documents(wiki, config))[:200]]
    heldout = SourceConfig(paths=[str(web_split[1])], format="jsonl")
    low = [classifiers.score(model, d) for d in iter_documents(heldout, config)]
    value = auc(high, low)
    # Pages never seen in training are harder (their article bodies read like Wikipedia): reported only.
    unseen = SourceConfig(**web_source(HELDOUT_PAGES))
    cross = auc(high, [classifiers.score(model, d) for d in iter_documents(unseen, config)])
    print(
        f"palm held-out AUC = {value:.3f} ({len(high)} wiki vs {len(low)} web docs); unseen sites {cross:.3f}"
    )
    assert value >= 0.9


def test_dsir_counts_and_lambda(tiny_bundle, shared_data):
    counts_path, lambda_path = Bundle(tiny_bundle.output).dsir("en", "wikipedia")
    counts, lam = np.load(counts_path), float(np.load(lambda_path))
    config = config_from_dict(tiny_config_dict(), shared_data)
    docs = list(iter_documents(config.languages["en"].datasets["wikipedia"], config))[:300]
    words = [word_punct_tokenize(d) for d in docs]
    assert counts.shape == (10_000,)
    # one unigram per word plus one bigram per adjacent pair
    assert counts.sum() == sum(2 * len(w) - 1 for w in words if w)
    assert lam == pytest.approx(np.mean([len(w) for w in words]))
    np.testing.assert_array_equal(counts[:50], sum(hashed_counts(w) for w in words)[:50])


def test_arpa_loads_in_kenlm_and_prefers_clean_text(tiny_bundle, shared_data):
    lm_path, sp_path = Bundle(tiny_bundle.output).language_model("en")
    assert isinstance(kenlm.Model(str(lm_path)), kenlm.Model)
    scorer = DocPerplexity(lm_path, sp_path)
    config = config_from_dict(tiny_config_dict(), shared_data)
    wiki = SourceConfig(paths=["lm-wikitext-2-valid-test/test.txt"], format="wikitext", min_chars=200)
    docs = list(iter_documents(wiki, config))[:100]
    rng = random.Random(0)
    clean = float(np.median([scorer(d) for d in docs]))
    shuffled = float(np.median([scorer.shuffled(d, rng) for d in docs]))
    print(f"tiny LM held-out median perplexity: clean {clean:.1f}, shuffled {shuffled:.1f}")
    assert clean * 2 < shuffled
    check = tiny_bundle.manifest["parameters"]["languages"]["en"]["lm"]["validation"]
    assert check["median_perplexity"] * 2 < check["median_perplexity_shuffled"]


def test_cutoffs_csv_from_the_sample(tiny_bundle):
    p30, p60 = Bundle(tiny_bundle.output).cutoffs["en"]
    assert 0 < p30 < p60


def test_unknown_keys_and_missing_datasets_are_errors(tmp_path: Path):
    bad = tiny_config_dict()
    bad["languages"]["en"]["lm"]["vocab"] = 10
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict(bad, tmp_path)
    bad = tiny_config_dict()
    bad["languages"]["en"]["dsir"] = ["books"]
    with pytest.raises(ConfigError, match="books"):
        config_from_dict(bad, tmp_path)


def test_shipped_configs_parse():
    root = Path(__file__).resolve().parents[2] / "pipelines" / "artifacts"
    for name in ("example.yaml", "default_bundle.yaml"):
        assert load_config(root / name).languages


def test_dsir_importance_separates_heldout_text(tiny_bundle, shared_data, web_split):
    """The builder's DSIR counts, used through the signal, rank held-out Wikipedia above web text."""
    from redpajama.quality_signals.registry import compute
    from redpajama.quality_signals.resources import Resources
    from redpajama.quality_signals.view import DocView

    resources = Resources.load(artifacts=tiny_bundle.output)
    config = config_from_dict(tiny_config_dict(), shared_data)
    wiki = SourceConfig(paths=["lm-wikitext-2-valid-test/test.txt"], format="wikitext", min_chars=200)
    name = "rps_doc_wikipedia_importance"

    def weight(text: str) -> float:
        return compute(DocView(text, language="en"), resources, [name])[name]

    high = [weight(d) for d in list(iter_documents(wiki, config))[:200]]
    low = [weight(d) for d in iter_documents(SourceConfig(paths=[str(web_split[1])], format="jsonl"), config)]
    value = auc(high, low)
    print(f"wikipedia importance held-out AUC = {value:.3f} ({len(high)} wiki vs {len(low)} web docs)")
    assert value >= 0.9
