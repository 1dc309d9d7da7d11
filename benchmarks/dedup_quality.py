"""Fuzzy dedup quality on planted near-duplicates of real text, next to the LSH theory and datasketch.

    python benchmarks/dedup_quality.py [--bases 300] [--copies 6]

Corpus: wikitext-2 paragraphs (../shared/data/lm-wikitext-2-valid-test, >= 120 words) as bases;
each gets near copies made by replacing random words, with edit rates spread so the copies' Jaccard
similarity of 13-gram word-shingle sets covers 0.4..1.0 (the actual Jaccard of every pair is
measured, never assumed). Signatures: the minhash stage's own `minhash_hashing` (RPv2 scheme:
SHA-1 32-bit base hash, 128 legacy permutations, seed 42) over lowercased whitespace words.

Per threshold t (0.7/0.8/0.9, RPv2's bands x rows): precision and recall of "same cluster" over
document pairs, truth = measured Jaccard >= t; the base-copy candidate rate per Jaccard bin next to
1-(1-s^r)^b; and datasketch `MinHashLSH` (same signatures, same (b, r)) + the same union-find.
Results: benchmarks/results/dedup_quality.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lm-wikitext-2-valid-test"
RESULTS = Path(__file__).resolve().parent / "results" / "dedup_quality.json"
NGRAM = 13


def paragraphs(limit: int) -> list[list[str]]:
    out = []
    for name in ("valid.txt", "test.txt"):
        for line in (DATA / name).read_text("utf-8").splitlines():
            words = line.lower().split()
            if len(words) >= 120 and not line.strip().startswith("="):
                out.append(words)
    return out[:limit]


def shingles(words: list[str]) -> set[str]:
    return {" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def corpus(bases: int, copies: int, seed: int = 0) -> tuple[list[list[str]], list[int]]:
    rng = np.random.default_rng(seed)
    texts = paragraphs(bases)
    vocab = sorted({w for t in texts for w in t})
    docs, family = [], []
    for b, words in enumerate(texts):
        docs.append(words)
        family.append(b)
        for _ in range(copies):
            rate = rng.uniform(0.0, 0.05)  # one edit touches up to 13 shingles: J falls fast
            copy = list(words)
            for i in np.flatnonzero(rng.random(len(copy)) < rate):
                copy[i] = vocab[rng.integers(len(vocab))]
            docs.append(copy)
            family.append(b)
    return docs, family


def signatures(docs: list[list[str]]) -> np.ndarray:
    from redpajama.pipelines.minhash_hashing import signatures as minhash
    from redpajama.pipelines.minhash_hashing import word_shingles

    return minhash(word_shingles(docs, NGRAM), hash="sha1", num_perm=128, seed=42)


def our_clusters(sig: np.ndarray, threshold: float) -> np.ndarray:
    from redpajama.pipelines.dedup import stage
    from redpajama.pipelines.dedup.config import FuzzyConfig
    from redpajama.pipelines.dedup.synthetic import write_minhash_file
    from redpajama.runners.local import RunOptions

    with tempfile.TemporaryDirectory() as tmp:
        root, relative = Path(tmp), "2023-14/0000/en_head.parquet"
        ids = [f"2023-14/0000/en_head.json.gz/{i}" for i in range(len(sig))]
        write_minhash_file(root, relative, ids, sig, thresholds=(threshold,))
        stage.run(root, FuzzyConfig(threshold=threshold), RunOptions(progress=False))
        table = pq.read_table(root / "clusters" / f"fuzzy-{threshold}" / relative)
        labels = np.arange(len(sig), dtype=np.int64) + 2**62  # singletons: own label
        rows = [int(i.rsplit("/", 1)[1]) for i in table.column("id").to_pylist()]
        labels[rows] = (table.column("cluster_id").to_numpy() >> np.uint64(2)).astype(np.int64)
        return labels


def datasketch_clusters(sig: np.ndarray, threshold: float, bands_rows: tuple[int, int]) -> np.ndarray:
    from datasketch import LeanMinHash, MinHashLSH

    from redpajama.pipelines.dedup.components import ReferenceUnionFind

    lsh = MinHashLSH(threshold=threshold, num_perm=128, params=bands_rows)
    hashes = [LeanMinHash(seed=42, hashvalues=s.astype(np.uint64), scheme="legacy") for s in sig]
    for i, h in enumerate(hashes):
        lsh.insert(i, h)
    uf = ReferenceUnionFind(len(sig))
    for i, h in enumerate(hashes):
        for j in lsh.query(h):
            uf.union(i, j)
    return uf.labels()


def scores(labels: np.ndarray, pairs: dict[tuple[int, int], float], threshold: float) -> dict[str, float]:
    # Pairs across families share no 13-gram (different paragraphs): J = 0 there.
    members = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    predicted = {p for group in members.values() for p in itertools.combinations(sorted(group), 2)}
    truth = {p for p, j in pairs.items() if j >= threshold}
    hit = len(predicted & truth)
    return {
        "precision": round(hit / len(predicted), 4) if predicted else 1.0,
        "recall": round(hit / len(truth), 4) if truth else 1.0,
        "predicted_pairs": len(predicted),
        "true_pairs": len(truth),
    }


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Each row's label replaced by the first row of its group: equal iff same partition."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def main() -> None:
    from redpajama.pipelines.dedup.config import BANDS_ROWS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=300)
    parser.add_argument("--copies", type=int, default=6)
    args = parser.parse_args()
    start = time.perf_counter()
    docs, family = corpus(args.bases, args.copies)
    sets = [shingles(d) for d in docs]
    pairs = {}
    for b in sorted(set(family)):
        group = [i for i, f in enumerate(family) if f == b]
        for i, j in itertools.combinations(group, 2):
            pairs[(i, j)] = jaccard(sets[i], sets[j])
    sig = signatures(docs)
    bins = np.linspace(0.4, 1.0, 7)
    result = {
        "benchmark": "dedup_quality",
        "command": " ".join(["python", "benchmarks/dedup_quality.py", *sys.argv[1:]]),
        "signatures": "redpajama.pipelines.minhash_hashing (sha1, 128 perms, seed 42, word 13-grams)",
        "docs": len(docs),
        "families": len(set(family)),
        "pairs": len(pairs),
        "jaccard_histogram": {
            f"{lo:.1f}-{hi:.1f}": int(sum(lo <= j < hi or (hi == 1.0 and j == 1.0) for j in pairs.values()))
            for lo, hi in itertools.pairwise(bins)
        },
        "versions": versions("datasketch", "numpy"),
        "thresholds": {},
    }
    for t in (0.7, 0.8, 0.9):
        b, r = BANDS_ROWS[t]
        bands = sig[:, : b * r].reshape(len(sig), b, r)
        curve = {}
        for lo, hi in itertools.pairwise(bins):
            chosen = [(i, j) for (i, j), s in pairs.items() if lo <= s < hi or (hi == 1.0 and s == 1.0)]
            if chosen:
                s_mid = float(np.mean([pairs[p] for p in chosen]))
                candidate = np.mean([(bands[i] == bands[j]).all(axis=1).any() for i, j in chosen])
                curve[f"{lo:.1f}-{hi:.1f}"] = {
                    "pairs": len(chosen),
                    "mean_jaccard": round(s_mid, 3),
                    "candidate_rate": round(float(candidate), 3),
                    "theory": round(float(np.mean([1 - (1 - pairs[p] ** r) ** b for p in chosen])), 3),
                }
        ours = our_clusters(sig, t)
        theirs = datasketch_clusters(sig, t, (b, r))
        same = bool(np.array_equal(_canonical(ours), _canonical(theirs)))
        result["thresholds"][str(t)] = {
            "bands_rows": [b, r],
            "ours": scores(ours, pairs, t),
            "datasketch_MinHashLSH": scores(theirs, pairs, t),
            "same_partition_as_datasketch": same,
            "candidate_curve": curve,
        }
    result["seconds"] = round(time.perf_counter() - start, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
