"""MinHash signature throughput per core against datasketch 2.0, in the same run.

    python benchmarks/minhash_throughput.py [--quick]

Corpus: the ~3 KB real documents of `signals_throughput.build_corpus` (Common Crawl, WikiText-2,
Debian reference), turned into RPv2's normalized words once, outside the timing. What is timed, on
both sides, is normalized words -> 128-permutation signature of every document (word 13-grams,
seed 42), shingle construction included:

  ours rpv2   `minhash_hashing.word_shingles` + `signatures(hash="sha1")` over batches of 1,000
              documents (RPv2 bit-exact; checked against datasketch below).
  ds legacy   per document: `[" ".join(words[i:i+13]).encode() ...]` (a list: no set, which
              would only cost datasketch more) -> `MinHash(scheme="legacy", hashfunc=sha1_hash32,
              permutations=<drawn once>).update_batch` -> `hashvalues`; the same signatures.
  ours fast   `signatures(hash="fast")`: vectorised polynomial base hash + affine32 permutations.
  ds affine32 the same per-document loop with datasketch's default scheme (affine32, sha1_hash32).

The permutations are drawn once per side (datasketch gets `permutations=` from a prototype, so its
RNG draw is not timed; RPv2 draws once too). Documents below 13 words are skipped by both.
One process; run it under `taskset -c 0` for a per-core figure. Median of N repeats after a
warm-up. Writes benchmarks/results/minhash_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _common import cpu_model, versions  # noqa: E402  (benchmarks run as scripts)
from signals_throughput import DATA, build_corpus

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "minhash_throughput.json"
NGRAM, NUM_PERM, SEED, BATCH = 13, 128, 42, 1_000


def time_ours(words: list[list[str]], hash: str) -> tuple[float, np.ndarray]:
    from redpajama.pipelines.minhash_hashing import signatures, word_shingles

    started = time.perf_counter()
    out = []
    for start in range(0, len(words), BATCH):
        shingles = word_shingles(words[start : start + BATCH], NGRAM)
        out.append(signatures(shingles, hash=hash, num_perm=NUM_PERM, seed=SEED))
    elapsed = time.perf_counter() - started
    return elapsed, np.concatenate(out)


def time_datasketch(words: list[list[str]], scheme: str) -> tuple[float, np.ndarray]:
    from datasketch import MinHash
    from datasketch.hashfunc import sha1_hash32

    proto = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=sha1_hash32, scheme=scheme)
    perms = proto.permutations
    started = time.perf_counter()
    out = []
    for doc in words:
        if len(doc) < NGRAM:
            continue
        shingles = [" ".join(doc[i : i + NGRAM]).encode("utf-8") for i in range(len(doc) - NGRAM + 1)]
        m = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=sha1_hash32, scheme=scheme, permutations=perms)
        m.update_batch(shingles)
        out.append(m.hashvalues)
    elapsed = time.perf_counter() - started
    return elapsed, np.array(out).astype(np.uint32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 documents, 1 repeat")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 2
    from redpajama.quality_signals.view import DocView

    n_docs, repeats = (300, 1) if args.quick else (args.docs, args.repeats)
    docs = build_corpus(n_docs)
    words = [DocView(d).normalized_words for d in docs]
    chars = sum(len(d) for d in docs)
    timed = {"ours_rpv2": [], "ds_legacy": [], "ours_fast": [], "ds_affine32": []}
    runs = {
        "ours_rpv2": lambda w: time_ours(w, "sha1"),
        "ds_legacy": lambda w: time_datasketch(w, "legacy"),
        "ours_fast": lambda w: time_ours(w, "fast"),
        "ds_affine32": lambda w: time_datasketch(w, "affine32"),
    }
    for run in runs.values():  # warm-up: imports, cached permutations and power tables
        run(words[:50])
    sigs = {}
    for _ in range(repeats):
        for name, run in runs.items():
            seconds, sigs[name] = run(words)
            timed[name].append(seconds)
    exact = bool(np.array_equal(sigs["ours_rpv2"], sigs["ds_legacy"]))
    if not exact:
        print("ERROR: RPv2-mode signatures differ from datasketch legacy", file=sys.stderr)
        return 1
    median = {name: statistics.median(values) for name, values in timed.items()}
    rate = {name: len(docs) / s for name, s in median.items()}
    result = {
        "benchmark": "minhash_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "python": platform.python_version()},
        "versions": versions("redpajama", "datasketch", "numpy"),
        "docs": len(docs),
        "docs_with_signature": int(sigs["ours_rpv2"].shape[0]),
        "mean_chars": round(chars / len(docs)),
        "repeats": repeats,
        "what": "normalized words -> 128-perm signature (word 13-grams), shingling included",
        "rpv2_bit_exact_vs_datasketch_legacy": exact,
        "seconds": median,
        "docs_per_s": rate,
        "ratio_rpv2_vs_legacy": median["ds_legacy"] / median["ours_rpv2"],
        "ratio_fast_vs_affine32": median["ds_affine32"] / median["ours_fast"],
    }
    print(f"{len(docs)} documents, mean {chars / len(docs):,.0f} chars, median of {repeats}, one process")
    labels = {
        "ours_rpv2": "ours --hash sha1 (RPv2 bit-exact)",
        "ds_legacy": "datasketch legacy (RPv2)",
        "ours_fast": "ours --hash fast",
        "ds_affine32": "datasketch affine32 (default)",
    }
    for name, label in labels.items():
        print(f"  {label:<36} {rate[name]:9.1f} docs/s  ({median[name]:.3f} s)")
    print(
        f"  ratio rpv2 mode / datasketch legacy:   {result['ratio_rpv2_vs_legacy']:.2f}x (signatures identical)"
    )
    print(f"  ratio fast mode / datasketch affine32: {result['ratio_fast_vs_affine32']:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
