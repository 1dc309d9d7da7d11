"""DSIR importance weights (REFERENCE A.1.6, A.5): hand computations, hashing modes, bundle lookup."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redpajama.artifacts.bundle import Bundle
from redpajama.quality_signals import dsir_features
from redpajama.quality_signals.dsir_features import (
    hashed_buckets,
    hashed_counts,
    ngram_hashes,
    resolve_hash_mode,
)
from redpajama.quality_signals.importance_weights import (
    DsirModel,
    importance_score,
    length_correction,
    poisson_log_pmf,
)
from redpajama.quality_signals.registry import SIGNALS, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView

NAMES = tuple(
    f"rps_doc_{d}_importance{s}"
    for d in ("books", "openwebtext", "wikipedia")
    for s in ("", "_length_correction")
)
WORDS = ["Hello", ",", "world", "!", "Straße", "é", "日本語", "\U0001f600", "a" * 70, "x", "Hello", ","]


def _python(code: str, seed: str, payload) -> object:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(payload),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


# ------------------------------------------------------------------------------------ registry
def test_registered_last_in_rpv2_order():
    assert tuple(SIGNALS)[-6:] == NAMES
    assert all(SIGNALS[n].level == "document" for n in NAMES)


# ------------------------------------------------------------------------------ hand computations
def test_weights_and_score_by_hand():
    target = np.array([3, 1, 0, 4], dtype=np.int64)  # p = 3/8, 1/8, 0, 4/8
    source = np.array([1, 1, 1, 1], dtype=np.int64)  # q = 1/4 each
    model = DsirModel.from_counts(target, source, 4.0, 2.0)
    w = [math.log(p + 1e-8) - math.log(0.25 + 1e-8) for p in (3 / 8, 1 / 8, 0.0, 4 / 8)]
    assert model.log_ratio.tolist() == pytest.approx(w, rel=1e-15)
    doc = np.array([2, 0, 1, 1], dtype=np.int64)
    expected = 2 * w[0] + w[2] + w[3]
    assert importance_score(doc, model, length=5, corrected=False) == round(expected, 8)
    # Poisson(5; 4) and Poisson(5; 2) written out: e^-l l^5 / 5!
    pt = math.exp(-4) * 4**5 / 120
    ps = math.exp(-2) * 2**5 / 120
    correction = math.log(pt + 1e-8) - math.log(ps + 1e-8)
    assert length_correction(5, 4.0, 2.0) == pytest.approx(correction, rel=1e-12)
    assert importance_score(doc, model, length=5, corrected=True) == round(expected + correction, 8)


def test_length_correction_is_stable_for_document_sizes():
    # lam**k / k! overflows a float at k ~ 170; the log form does not
    k, lam = 1000, 1000.0
    by_sum = sum(math.log(lam) - math.log(i) for i in range(1, k + 1)) - lam
    assert poisson_log_pmf(k, lam) == pytest.approx(by_sum, rel=1e-10)
    assert length_correction(k, lam, 900.0) == pytest.approx(
        math.log(math.exp(by_sum) + 1e-8) - math.log(math.exp(poisson_log_pmf(k, 900.0)) + 1e-8)
    )
    # RPv2's unit mismatch: 3000 characters against ~500 words: both pmfs underflow -> 0
    assert length_correction(3000, 500.0, 450.0) == 0.0
    # far enough from both lambdas that the pmfs vanish next to 1e-8, but do not underflow
    assert 0.0 < math.exp(poisson_log_pmf(800, 500.0)) < 1e-30
    assert length_correction(800, 500.0, 450.0) == 0.0
    assert poisson_log_pmf(0, 0.0) == 0.0 and poisson_log_pmf(3, 0.0) == -math.inf


def test_length_correction_is_rpv2s_scipy_computation_to_the_bit():
    # RPv2: np.log(stats.poisson.pmf(L, lt) + 1e-8) - np.log(stats.poisson.pmf(L, ls) + 1e-8). Near
    # the lambdas the lgamma form differs from scipy's in the last bits, enough to flip the 8th
    # decimal of a rounded score now and then (743 against 771.858 / 773.757 did).
    from scipy import stats

    for length, lt, ls in ((743, 771.858, 773.757), (5, 4.0, 2.0), (1000, 1000.0, 900.0), (60, 64.5, 120.0)):
        expected = float(
            np.log(stats.poisson.pmf(length, lt) + 1e-8) - np.log(stats.poisson.pmf(length, ls) + 1e-8)
        )
        assert length_correction(length, lt, ls) == expected
    assert round(length_correction(743, 771.858, 773.757), 8) == 0.0732442


def test_hashed_counts_are_unigrams_plus_bigrams():
    words = ["a", "b", "a", "b"]
    buckets = hashed_buckets(words, 16, "stable")
    assert len(buckets) == 4 + 3  # unigrams a, b, a, b then bigrams (a, b), (b, a), (a, b)
    assert buckets[0] == buckets[2] and buckets[1] == buckets[3] and buckets[4] == buckets[6]
    counts = hashed_counts(words, 16, "stable")
    assert counts.dtype == np.int64 and counts.shape == (16,)
    assert counts.tolist() == np.bincount(buckets, minlength=16).tolist() and counts.sum() == 7
    assert hashed_counts([], 16).sum() == 0 and hashed_counts(["solo"], 16).sum() == 1


# --------------------------------------------------------------------------------- hashing modes
def test_rpv2_mode_equals_builtin_hash_under_seed_42():
    code = (
        "import json, sys\n"
        "w = json.loads(sys.stdin.read())\n"
        "print(json.dumps([hash(x) for x in w] + [hash((a, b)) for a, b in zip(w, w[1:])]))"
    )
    reference = _python(code, "42", WORDS)
    assert ngram_hashes(WORDS, "rpv2").tolist() == reference
    assert hashed_buckets(WORDS, 10_000, "rpv2").tolist() == [abs(h) % 10_000 for h in reference]
    # a process that itself runs with seed 42 hashes in-process and agrees
    code = (
        "import json, sys\n"
        "from redpajama.quality_signals.dsir_features import ngram_hashes, _SEEDED\n"
        "got = ngram_hashes(json.loads(sys.stdin.read()), 'rpv2').tolist()\n"
        "print(json.dumps([got, _SEEDED._in_process]))"
    )
    got, in_process = _python(code, "42", WORDS)
    assert got == reference and in_process is True


def test_stable_mode_is_independent_of_the_seed_and_pinned():
    code = (
        "import json, sys\n"
        "from redpajama.quality_signals.dsir_features import hashed_buckets\n"
        "print(json.dumps(hashed_buckets(json.loads(sys.stdin.read()), 10000, 'stable').tolist()))"
    )
    ours = hashed_buckets(WORDS, 10_000, "stable").tolist()
    assert _python(code, "1", WORDS) == ours == _python(code, "99", WORDS)
    # pinned: DSIR artifacts built with mode "stable" depend on these exact values
    assert hashed_buckets(["Hello", ",", "world"], 10_000, "stable").tolist() == PINNED_STABLE
    # the definition: a word's hash is keyed BLAKE2b-64 of its UTF-8, read as signed little-endian
    digest = hashlib.blake2b(b"Hello", digest_size=8, key=b"redpajama-dsir-v1").digest()
    assert abs(int.from_bytes(digest, "little", signed=True)) % 10_000 == PINNED_STABLE[0]


PINNED_STABLE = [6574, 7692, 4516, 8005, 7752]


def test_resolve_hash_mode_reads_the_manifest():
    # No manifest: a foreign bundle such as RPv2's own DSIR files, hashed as RPv2 hashed them
    assert resolve_hash_mode({}) == "rpv2" and resolve_hash_mode(None) == "rpv2"
    assert resolve_hash_mode(None, rpv2_compat=True) == "rpv2"
    # A manifest without the key was not written by our builder (which always records it), e.g.
    # `artifacts fetch` into a folder of RPv2's DSIR files: RPv2's hashing as well.
    assert resolve_hash_mode({"name": "fetched"}) == "rpv2"
    assert resolve_hash_mode({"name": "fetched"}, rpv2_compat=True) == "rpv2"
    assert resolve_hash_mode({"dsir_hash": "rpv2"}) == "rpv2"
    assert resolve_hash_mode({"dsir_hash": "rpv2"}, rpv2_compat=True) == "rpv2"
    with pytest.raises(ValueError, match="rebuild"):
        resolve_hash_mode({"dsir_hash": "stable"}, rpv2_compat=True)
    with pytest.raises(ValueError, match="known"):
        resolve_hash_mode({"dsir_hash": "md5"})
    with pytest.raises(ValueError, match="unknown DSIR hash mode"):
        dsir_features.word_hashes(["a"], "md5")


# --------------------------------------------------------------------------- signals end to end
def _write_bundle(root: Path, mode: str) -> Path:
    rng = np.random.default_rng(0)
    datasets = {
        "en": ("wikipedia", "books", "openwebtext", "ccnet"),
        "de": ("wikipedia", "ccnet"),
        "fr": ("wikipedia",),
    }
    for lang, names in datasets.items():
        folder = root / "dsir" / lang
        folder.mkdir(parents=True)
        for i, name in enumerate(names):
            np.save(folder / f"{name}.{lang}.10000.counts.npy", rng.integers(0, 50, 10_000, dtype=np.int64))
            np.save(folder / f"{name}.{lang}.lambda.npy", np.float64(3.0 + i))
    (root / "manifest.json").write_text(json.dumps({"dsir_hash": mode}), encoding="utf-8")
    return root


@pytest.mark.parametrize("mode", ["stable", "rpv2"])
def test_signals_from_a_bundle(tmp_path: Path, mode: str):
    root = _write_bundle(tmp_path / "bundle", mode)
    res = Resources.load(artifacts=root, rpv2_compat=mode == "rpv2")
    assert res.dsir_hash == mode
    text = "Hi, Bob!"  # 4 raw words, 8 characters: the length term is not negligible
    got = compute(DocView(text, "en"), res, NAMES)
    bundle = Bundle.at(root)
    source_counts, source_lambda = (np.load(p) for p in bundle.dsir("en", "ccnet"))
    counts = hashed_counts(["Hi", ",", "Bob", "!"], 10_000, mode)
    for dataset in ("books", "openwebtext", "wikipedia"):
        target_counts, target_lambda = (np.load(p) for p in bundle.dsir("en", dataset))
        w = np.log(target_counts / target_counts.sum() + 1e-8) - np.log(
            source_counts / source_counts.sum() + 1e-8
        )
        score = float(np.inner(counts, w))
        assert got[f"rps_doc_{dataset}_importance"] == round(score, 8)
        corrected = score + length_correction(len(text), float(target_lambda), float(source_lambda))
        assert got[f"rps_doc_{dataset}_importance_length_correction"] == round(corrected, 8)
        assert corrected != score
    de = compute(DocView(text, "de"), res, NAMES)
    assert de["rps_doc_wikipedia_importance"] is not None
    assert de["rps_doc_books_importance"] is None and de["rps_doc_openwebtext_importance"] is None
    assert set(compute(DocView(text, "fr"), res, NAMES).values()) == {None}  # no ccnet source counts
    assert set(compute(DocView("", "en"), res, NAMES).values()) == {None}
    no_bundle = Resources(stop_words=res.stop_words, ldnoobw=res.ldnoobw)
    assert set(compute(DocView(text, "en"), no_bundle, NAMES).values()) == {None}


def test_fetching_into_rpv2_dsir_files_keeps_their_hashing(tmp_path: Path):
    # RPv2's DSIR files come without a manifest; `artifacts fetch` into that folder then writes one
    # without dsir_hash. The importance weights must stay RPv2's (they became noise before).
    from redpajama.artifacts.manifest import update_manifest

    root = _write_bundle(tmp_path / "bundle", "rpv2")
    (root / "manifest.json").unlink()
    text = "Hi, Bob! A longer line of words, so that the counts differ between hashes."
    before = compute(DocView(text, "en"), Resources.load(artifacts=root), NAMES)
    update_manifest(root, {"wikiref": {"url": "https://example.invalid/model.bin"}})
    assert "dsir_hash" not in json.loads((root / "manifest.json").read_text("utf-8"))
    res = Resources.load(artifacts=root)
    assert res.dsir_hash == "rpv2"
    assert compute(DocView(text, "en"), res, NAMES) == before


def test_bundle_hashed_one_way_refuses_the_other(tmp_path: Path):
    root = _write_bundle(tmp_path / "bundle", "stable")
    with pytest.raises(ValueError, match="dsir_hash='stable'"):
        Resources.load(artifacts=root, rpv2_compat=True)


def test_word_hash_cache_overflow_keeps_values(monkeypatch):
    expected = ngram_hashes(WORDS, "stable").tolist()
    monkeypatch.setattr(dsir_features, "_CACHE_LIMIT", 3)
    monkeypatch.setitem(dsir_features._CACHES, "stable", {})
    assert ngram_hashes(WORDS, "stable").tolist() == expected  # more distinct words than the limit
    assert ngram_hashes(["new", "words", "here", "too"], "stable").size == 7
