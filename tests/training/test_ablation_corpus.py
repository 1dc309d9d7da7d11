"""The ablation corpus build (benchmarks/ablation_corpus/build.py) at a small scale, end to end.

One build at --scale 0.2 (~280 documents, 20-40 s on 2 cores) through the real stages, then checks
on its outputs: the four subsets exist and nest (each curated subset drops documents, never adds
them), planted near-duplicates are removed at the rate MinHash LSH predicts for their measured
Jaccard similarity while unique clean documents are left alone, and the rules remove spam far more
often than clean prose. The corpus itself is checked in process for determinism and linear scale.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from redpajama.pipelines.dedup.config import BANDS_ROWS

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
BUILD = REPO / "benchmarks" / "ablation_corpus" / "build.py"
SCALE = 0.2
SUBSETS = ("raw", "dedup", "gopher-dedup", "c4-gopher-dedup")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data folder not found: {SHARED}"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ablation") / "out"
    cmd = [sys.executable, str(BUILD), "-o", str(out), "--scale", str(SCALE), "--seed", "3", "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def build_module():
    spec = importlib.util.spec_from_file_location("ablation_corpus_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ids(out: Path, subset: str) -> set[str]:
    return set(pq.read_table(out / "subsets" / subset / "part-00000.parquet").column("id").to_pylist())


def _origins(out: Path) -> list[dict]:
    return pq.read_table(out / "origins.parquet").to_pylist()


def test_subsets_exist_nest_and_match_the_summary(built: Path) -> None:
    summary = json.loads((built / "summary.json").read_text("utf-8"))
    origins = _origins(built)
    ids = {name: _ids(built, name) for name in SUBSETS}
    assert ids["raw"] == {r["id"] for r in origins}, "raw must be every corpus document, once"
    assert ids["c4-gopher-dedup"] < ids["gopher-dedup"] < ids["dedup"] < ids["raw"]
    for name in SUBSETS:
        table = pq.read_table(built / "subsets" / name / "part-00000.parquet")
        assert {"id", "text", "origin", "content", "source"} <= set(table.column_names)
        assert table.num_rows == summary["subsets"][name]["docs"] == len(ids[name])
        assert all(text.strip() for text in table.column("text").to_pylist())
    # Exact dedup leaves one copy of every text (fuzzy dedup cannot see pages under 13 words).
    texts = {
        name: pq.read_table(built / "subsets" / name / "part-00000.parquet").column("text").to_pylist()
        for name in ("raw", "dedup")
    }
    assert len(set(texts["raw"])) < len(texts["raw"]), "the corpus should hold exact duplicates"
    assert len(set(texts["dedup"])) == len(texts["dedup"])
    noise = sum(1 for r in origins if r["origin"] in ("spam", "boilerplate", "duplicate")) / len(origins)
    assert 0.35 <= noise <= 0.55, f"noise is {noise:.0%} of the documents"


def test_planted_duplicates_are_removed_at_the_lsh_rate(built: Path) -> None:
    origins = _origins(built)
    kept = _ids(built, "dedup")
    bands, rows = BANDS_ROWS[0.8]
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in origins:
        if row["dup_of"]:
            groups[row["dup_of"]].append(row)
    assert sum(len(c) for c in groups.values()) >= 30, "too few planted copies to measure a rate"
    removed = expected = variance = 0.0
    for original, copies in groups.items():
        members = [original, *(c["id"] for c in copies)]
        removed += len(members) - sum(m in kept for m in members)
        # Copies with the original's exact words always share every LSH band (or its exact text):
        # of the original and those copies at most one may survive.
        same_words = [original, *(c["id"] for c in copies if c["exact_copy"] or c["jaccard"] == 1.0)]
        assert sum(m in kept for m in same_words) <= 1, f"identical copies of {original} survived dedup"
        for c in copies:
            p = 1.0 if c["exact_copy"] else 1 - (1 - (c["jaccard"] or 0.0) ** rows) ** bands
            expected += p
            variance += p * (1 - p)
    assert removed >= expected - 3 * variance**0.5 - 1, (removed, expected, variance**0.5)
    singles = [r["id"] for r in origins if r["origin"] == "clean" and r["id"] not in groups]
    wrongly = sum(1 for i in singles if i not in kept)
    assert wrongly <= 0.02 * len(singles), f"dedup removed {wrongly} of {len(singles)} unique clean documents"


def test_rules_remove_spam_more_than_clean(built: Path) -> None:
    origin = {r["id"]: r["origin"] for r in _origins(built)}
    source = {r["id"]: r["source"] for r in _origins(built)}
    deduped = _ids(built, "dedup")
    for subset in ("gopher-dedup", "c4-gopher-dedup"):
        kept = _ids(built, subset)
        removed = {
            o: sum(1 for i in deduped if origin[i] == o and i not in kept)
            / sum(1 for i in deduped if origin[i] == o)
            for o in ("spam", "clean")
        }
        assert removed["spam"] >= 0.75 and removed["spam"] > removed["clean"] + 0.15, (subset, removed)
    # C4's document rules are what catches Latin filler and LDNOOBW words; Gopher alone does not.
    c4 = _ids(built, "c4-gopher-dedup")
    for kind in ("spam:lorem-ipsum", "spam:bad-words"):
        pages = [i for i in deduped if source[i] == kind]
        assert pages and not any(i in c4 for i in pages), kind


def test_corpus_is_seeded_and_scales_linearly(build_module) -> None:
    def corpus(seed: int, scale: float) -> list[tuple[str, str, str]]:
        return [(d.id, d.origin, d.text) for d in build_module.build_corpus(SHARED, seed, scale)]

    small = corpus(5, 0.1)
    assert corpus(5, 0.1) == small
    assert corpus(6, 0.1) != small

    def counts(docs: list[tuple[str, str, str]]) -> Counter[str]:
        # clean and web are sampled together from one pool, so only their sum scales exactly
        return Counter("real" if origin in ("clean", "web") else origin for _, origin, _ in docs)

    double = counts(corpus(5, 0.2))
    for origin, n in counts(small).items():
        assert abs(double[origin] - 2 * n) <= 3, (origin, n, double[origin])
