"""Build the mixed-quality ablation corpus and its curated subsets with our own pipeline.

    python benchmarks/ablation_corpus/build.py -o abl/ [--scale 1] [--seed 0] [--workers 2]

From ../shared/data only (sources.py, noise.py), deterministically for a seed:

1. corpus: clean prose + real English web pages, plus seeded spam pages, boilerplate pages and
   planted near-duplicates (~45% of the documents at every scale) -> OUT/corpus/part-*.jsonl.gz
   (id, text, language) and the origin side table OUT/origins.parquet (id, origin, content: the
   origin of the text, a copy's being its original's, source, url, dup_of, edit, exact_copy,
   jaccard: a planted copy's 13-gram Jaccard similarity to its original, bytes).
2. pipeline, the real stages through the functions the CLI calls, into OUT/tree:
   ingest -> signals -> minhash (0.8) -> dedup fuzzy 0.8 -> dedup --exact (key: text).
   Both duplicate lists are merged into duplicates/fuzzy-0.8+exact (see `combine_duplicates`),
   then `filter` writes OUT/curated/<subset> for each rule set.
3. subsets: OUT/subsets/<name>/part-00000.parquet with id, text, origin, content, source, ready
   for `redpajama tokenize`; OUT/summary.json: per subset docs, bytes, GPT-2 tokens, the share of
   each origin and content and the fraction of the raw documents of each it kept, the rule
   funnels, the planted-duplicate removal rate next to its LSH expectation, and the seconds of
   every step. README.md has the measured figures.

`--scale` multiplies every document count. Below 1 the clean and web pools are sampled; above 1
they are exhausted, so the extra copies are exact repeats labelled `duplicate` (edit `repeat`):
../shared/data holds ~0.9M GPT-2 tokens of unique clean English prose and no more.
A rerun with the same arguments resumes (every stage skips finished work); OUT built with other
arguments is refused.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import noise  # noqa: E402
import sources  # noqa: E402
from sources import Doc  # noqa: E402

from redpajama.io import atomic, layout  # noqa: E402
from redpajama.pipelines import filter as filter_stage  # noqa: E402
from redpajama.pipelines import ingest, minhash, signals  # noqa: E402
from redpajama.pipelines.dedup import exact  # noqa: E402
from redpajama.pipelines.dedup import stage as fuzzy  # noqa: E402
from redpajama.pipelines.dedup.config import BANDS_ROWS, ExactConfig, FuzzyConfig  # noqa: E402
from redpajama.pipelines.rules import resolve  # noqa: E402
from redpajama.quality_signals.view import DocView  # noqa: E402
from redpajama.query import parquet_files  # noqa: E402
from redpajama.runners.local import RunOptions, RunSummary  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
SNAPSHOT = "ablation"
LANGUAGE = "en"
#: Corpus files = ingest tasks; a few so that --workers 2 has work to share.
SHARDS = 4
#: Noise documents per clean or web document: 0.82 noise per 1 real -> 45% of documents are noise.
SPAM_PER_REAL = 0.30
BOILERPLATE_PER_REAL = 0.25
DUPLICATES_PER_REAL = 0.27
THRESHOLD = 0.8
NGRAM = 13
FUZZY = f"fuzzy-{THRESHOLD}"
COMBINED = f"{FUZZY}+exact"
#: RPv2's Bloom filter default is 1% false positives at capacity: ~1% of unique documents would
#: be dropped as "duplicates". A tiny rate keeps exact dedup from touching unique documents.
EXACT_ERROR_RATE = 1e-6
#: subset name -> rule sets applied by `filter` (None: the ingested corpus as it is).
SUBSETS: dict[str, tuple[str, ...] | None] = {
    "raw": None,
    "dedup": (),
    "gopher-dedup": ("gopher",),
    "c4-gopher-dedup": ("c4", "gopher"),
}
#: What a document's text is; its origin adds `duplicate` for planted copies and repeats.
CONTENTS = ("clean", "web", "spam", "boilerplate")
ORIGINS = (*CONTENTS, "duplicate")
#: Origin-table columns carried into every subset file beside id and text.
SUBSET_LABELS = ("origin", "content", "source")
BYTES_PER_TOKEN = 4.2  # the fallback estimate when tiktoken or the tokenizer files are missing


# ------------------------------------------------------------------------------- corpus


def sample_pool(rng: random.Random, pool: list[Doc], scale: float) -> list[Doc]:
    """`scale` x the pool: a seeded sample below 1; above 1, the pool plus exact repeats."""
    want = max(1, round(len(pool) * scale))
    if want <= len(pool):
        return sorted(rng.sample(pool, want), key=lambda d: d.id)
    repeats = []
    for k in range(want - len(pool)):
        original = pool[k % len(pool)]
        repeats.append(
            Doc(
                id=f"duplicate/{original.id}/r{k // len(pool)}",
                text=original.text,
                origin="duplicate",
                source=original.source,
                url=original.url,
                dup_of=original.id,
                edit="repeat",
            )
        )
    return pool + repeats


def build_corpus(shared: Path, seed: int, scale: float) -> list[Doc]:
    pool = sources.clean_documents(shared, seed) + sources.web_documents(shared)
    real = sample_pool(random.Random(f"{seed}/sample"), pool, scale)
    count = len(real)  # round(len(pool) * scale): noise grows with the real documents
    badwords = ldnoobw_words(shared)
    spam = noise.spam_pages(random.Random(f"{seed}/spam"), round(count * SPAM_PER_REAL), badwords)
    sentences = noise.split_sentences([d.text for d in real if d.origin in ("clean", "web")])
    boilerplate = noise.boilerplate_pages(
        random.Random(f"{seed}/boilerplate"), round(count * BOILERPLATE_PER_REAL), sentences
    )
    originals = [d for d in real if d.origin == "clean"] + spam
    planted = noise.near_duplicates(
        random.Random(f"{seed}/duplicates"), round(count * DUPLICATES_PER_REAL), originals
    )
    return real + spam + boilerplate + planted


def ldnoobw_words(shared: Path) -> list[str]:
    lines = (shared / "ldnoobw-badwords" / "en").read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def shingles(text: str) -> set[tuple[str, ...]]:
    """Word 13-grams of the normalized words the minhash stage hashes (empty below 13 words)."""
    words = DocView(text).normalized_words
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def jaccard(a: str, b: str) -> float | None:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x and y else None


def origins_table(docs: list[Doc]) -> pa.Table:
    """One row per document; `content` is the origin of its text (a copy's is its original's)."""
    texts = {d.id: d.text for d in docs}
    origin = {d.id: d.origin for d in docs}
    return pa.table(
        {
            "id": [d.id for d in docs],
            "origin": [d.origin for d in docs],
            "content": [origin[d.dup_of] if d.dup_of else d.origin for d in docs],
            "source": [d.source for d in docs],
            "url": [d.url for d in docs],
            "dup_of": [d.dup_of for d in docs],
            "edit": [d.edit for d in docs],
            "jaccard": [jaccard(d.text, texts[d.dup_of]) if d.dup_of else None for d in docs],
            "exact_copy": [d.text == texts[d.dup_of] if d.dup_of else None for d in docs],
            "bytes": [len(d.text.encode("utf-8")) for d in docs],
        }
    )


def write_corpus(docs: list[Doc], folder: Path, seed: int) -> None:
    """Seeded shuffle into SHARDS gzipped JSONL files (gzip mtime 0: same bytes on every build)."""
    order = list(docs)
    random.Random(f"{seed}/order").shuffle(order)
    for shard in range(SHARDS):
        lines = []
        for doc in order[shard::SHARDS]:
            record = {"id": doc.id, "text": doc.text, "language": LANGUAGE}
            if doc.url:
                record["url"] = doc.url
            lines.append(json.dumps(record, ensure_ascii=False))
        data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
        atomic.write_bytes(folder / f"part-{shard:04d}.jsonl.gz", data)


# ----------------------------------------------------------------------------- pipeline


def _checked(summary: RunSummary) -> RunSummary:
    if summary.failed:
        raise RuntimeError(f"{summary.stage}: failed tasks: {summary.failed}")
    return summary


def run_pipeline(corpus: Path, tree: Path, options: RunOptions, timings: dict[str, float]) -> None:
    steps = {
        "ingest": lambda: ingest.run([str(corpus)], tree, ingest.IngestConfig(snapshot=SNAPSHOT), options),
        "signals": lambda: signals.run(tree, signals.SignalsConfig(), options),
        "minhash": lambda: minhash.run(tree, minhash.MinHashConfig(thresholds=(THRESHOLD,)), options),
        "dedup_fuzzy": lambda: fuzzy.run(tree, FuzzyConfig(threshold=THRESHOLD), options),
        "dedup_exact": lambda: exact.run(tree, ExactConfig(key="text", error_rate=EXACT_ERROR_RATE), options),
    }
    for name, step in steps.items():
        start = time.perf_counter()
        _checked(step())
        timings[name] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    combine_duplicates(tree)
    timings["combine_duplicates"] = round(time.perf_counter() - start, 2)


def _ids(folder: Path) -> Iterator[tuple[Path, pa.Table]]:
    for path in parquet_files(folder):
        yield path.relative_to(folder), pq.read_table(path, columns=["id", "id_int"])


def combine_duplicates(tree: Path) -> None:
    """duplicates/fuzzy-0.8+exact = fuzzy duplicates + exact duplicates outside fuzzy clusters.

    A plain union could drop every copy: fuzzy keeps the smallest id_int of a cluster, exact the
    first copy it reads, and those can differ. Identical texts of >= 13 words have identical
    signatures, so they always share a fuzzy cluster, which already keeps exactly one of them;
    exact dedup is needed only for documents outside every cluster (texts under 13 words have no
    signature). The filter stage anti-joins one duplicates folder, hence the merged one.
    """
    clustered = set()
    for _, table in _ids(tree / "clusters" / FUZZY):
        clustered.update(table.column("id").to_pylist())
    merged: dict[Path, list[pa.Table]] = defaultdict(list)
    for relative, table in _ids(tree / "duplicates" / FUZZY):
        merged[relative].append(table)
    for relative, table in _ids(tree / "duplicates" / exact.EXACT):
        keep = pc.invert(pc.is_in(table.column("id"), value_set=pa.array(sorted(clustered), pa.string())))
        merged[relative].append(table.filter(keep))
    for relative, tables in merged.items():
        with atomic.atomic_path(tree / "duplicates" / COMBINED / relative) as temp:
            pq.write_table(pa.concat_tables(tables).combine_chunks(), temp)


def run_filters(tree: Path, curated: Path, options: RunOptions, timings: dict[str, float]) -> None:
    for name, rule_sets in SUBSETS.items():
        if rule_sets is None:
            continue
        config = filter_stage.FilterConfig(source=str(tree), rules=tuple(resolve(rule_sets)), dedup=COMBINED)
        start = time.perf_counter()
        summary, _stats = filter_stage.run(curated / name, config, options)
        _checked(summary)
        timings[f"filter:{name}"] = round(time.perf_counter() - start, 2)


# ------------------------------------------------------------------------------ subsets


def documents_folder(out: Path, name: str) -> Path:
    base = out / "tree" if SUBSETS[name] is None else out / "curated" / name
    return base / layout.DOCUMENTS


def write_subset(documents: Path, dest: Path, origins: pa.Table) -> None:
    """The subset's documents, in the tree's file and row order, as id/text/origin/source Parquet."""
    lookup = origins.select(["id", *SUBSET_LABELS])
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.large_string()), *((label, pa.string()) for label in SUBSET_LABELS)]
    )
    with (
        atomic.atomic_path(dest / "part-00000.parquet") as temp,
        pq.ParquetWriter(temp, schema, compression="zstd") as writer,
    ):
        for path in parquet_files(documents):
            docs = pq.read_table(path, columns=["id", "raw_content"])
            where = pc.index_in(docs.column("id"), value_set=lookup.column("id"))
            if where.null_count:
                raise RuntimeError(f"{path}: documents missing from the origin table")
            columns = {"id": docs.column("id"), "text": docs.column("raw_content").cast(pa.large_string())}
            columns |= {label: pc.take(lookup.column(label), where) for label in SUBSET_LABELS}
            writer.write_table(pa.table(columns, schema=schema))


# ------------------------------------------------------------------------------ summary


def gpt2_encoding(shared: Path) -> Any | None:
    """GPT-2's BPE from the shared encoder.json/vocab.bpe when tiktoken is installed (optional)."""
    folder = shared / "tokenizer-gpt2-bpe-and-cl100k"
    try:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    except ImportError:
        return None
    if not (folder / "vocab.bpe").is_file() or not (folder / "encoder.json").is_file():
        return None
    ranks = data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    return tiktoken.Encoding(
        "gpt2",
        # GPT-2's pre-tokenizer pattern, as tiktoken_ext.openai_public defines it
        pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


def count_tokens(texts: list[str], encoding: Any | None) -> int:
    """Exact GPT-2 tokens with an encoding, else the bytes/4.2 estimate."""
    if encoding is None:
        return round(sum(len(t.encode("utf-8")) for t in texts) / BYTES_PER_TOKEN)
    return sum(len(ids) for ids in encoding.encode_ordinary_batch(texts, num_threads=2))


def shares(labels: list[str], nbytes: list[int], kinds: tuple[str, ...], raw: Counter[str] | None) -> dict:
    """Docs, bytes and their shares per kind; with the raw counts, the fraction of raw docs kept."""
    docs, size = Counter[str](), Counter[str]()
    for label, n in zip(labels, nbytes, strict=True):
        docs[label] += 1
        size[label] += n
    total_docs, total_bytes = max(1, len(labels)), max(1, sum(nbytes))
    result = {}
    for kind in kinds:
        entry = {
            "docs": docs[kind],
            "bytes": size[kind],
            "share_docs": round(docs[kind] / total_docs, 4),
            "share_bytes": round(size[kind] / total_bytes, 4),
        }
        if raw and raw[kind]:
            entry["kept_of_raw"] = round(docs[kind] / raw[kind], 4)
        result[kind] = entry
    return result


def subset_summary(path: Path, origins: pa.Table, encoding: Any | None, is_raw: bool) -> dict[str, Any]:
    table = pq.read_table(path)
    texts = table.column("text").to_pylist()
    nbytes = [len(t.encode("utf-8")) for t in texts]
    labels = {c: table.column(c).to_pylist() for c in SUBSET_LABELS}
    raw = {c: None if is_raw else Counter(origins.column(c).to_pylist()) for c in ("origin", "content")}
    return {
        "docs": len(texts),
        "bytes": sum(nbytes),
        "gpt2_tokens": count_tokens(texts, encoding),
        "by_origin": shares(labels["origin"], nbytes, ORIGINS, raw["origin"]),
        "by_content": shares(labels["content"], nbytes, CONTENTS, raw["content"]),
        "by_source": dict(
            sorted(
                Counter(f"{o}/{s}" for o, s in zip(labels["origin"], labels["source"], strict=True)).items()
            )
        ),
    }


def planted_duplicates(origins: pa.Table, kept_ids: set[str]) -> dict[str, Any]:
    """How many planted copies dedup removed, next to what MinHash LSH should find.

    A group is an original and its copies; dedup that finds all of them keeps one member, so the
    removed copies of a group are its size minus its survivors. Expected: fuzzy dedup pairs a copy
    with its original with probability 1-(1-J^r)^b for their 13-gram Jaccard J (b bands x r rows
    at 0.8), exact dedup always finds an unchanged copy; clusters join transitively (a copy missed
    directly can still meet its original through another copy), which can only add to that.
    """
    bands, rows = BANDS_ROWS[THRESHOLD]
    groups: dict[str, list[str]] = defaultdict(list)
    expected, variance = 0.0, 0.0
    for row in origins.filter(pc.is_valid(origins.column("dup_of"))).to_pylist():
        groups[row["dup_of"]].append(row["id"])
        found = 1 - (1 - row["jaccard"] ** rows) ** bands if row["jaccard"] is not None else 0.0
        p = 1.0 if row["exact_copy"] else found
        expected += p
        variance += p * (1 - p)
    survivors = {o: sum(1 for i in [o, *c] if i in kept_ids) for o, c in groups.items()}
    copies = sum(len(c) for c in groups.values())
    removed = sum(len(c) + 1 - survivors[o] for o, c in groups.items())
    singles = [
        r["id"]
        for r in origins.select(["id", "origin"]).to_pylist()
        if r["origin"] == "clean" and r["id"] not in groups
    ]
    return {
        "groups": len(groups),
        "copies": copies,
        "removed_copies": removed,
        "removal_rate": round(removed / copies, 4) if copies else None,
        "expected_removed": round(expected, 2),
        "expected_removed_sd": round(variance**0.5, 2),
        "expected_rate": round(expected / copies, 4) if copies else None,
        "groups_left_with_one": sum(1 for n in survivors.values() if n == 1),
        "clean_singletons": len(singles),
        "clean_singletons_removed": sum(1 for i in singles if i not in kept_ids),
    }


def filter_funnel(curated: Path) -> list[dict[str, Any]]:
    """Documents left after each rule, as the filter stage wrote them to its stats.json."""
    stats_file = layout.stage_dir(curated, filter_stage.STAGE) / "stats.json"
    return json.loads(stats_file.read_text("utf-8"))["funnel"]


def summarize(out: Path, shared: Path, origins: pa.Table, meta: dict[str, Any]) -> dict[str, Any]:
    encoding = gpt2_encoding(shared)
    subsets: dict[str, Any] = {}
    for name in SUBSETS:
        path = out / "subsets" / name / "part-00000.parquet"
        info = subset_summary(path, origins, encoding, is_raw=name == "raw")
        if name == "dedup":  # the rule subsets also drop originals: only here is it dedup's doing
            kept = set(pq.read_table(path, columns=["id"]).column("id").to_pylist())
            info["planted_duplicates"] = planted_duplicates(origins, kept)
        if name != "raw":
            info["funnel"] = filter_funnel(out / "curated" / name)
        subsets[name] = info
    method = "tiktoken gpt2" if encoding is not None else f"bytes/{BYTES_PER_TOKEN}"
    return {**meta, "gpt2_tokens_method": method, "subsets": subsets}


# ---------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every document count")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every stage")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if not (args.shared_data / "lm-tinyshakespeare").is_dir():
        parser.error(f"no shared data at {args.shared_data}")
    return args


def claim_output(out: Path, params: dict[str, Any]) -> None:
    """Record the build's arguments; an OUT built with others is refused (stale stages would mix)."""
    marker = out / "build.json"
    if marker.exists():
        if json.loads(marker.read_text("utf-8")) != params:
            raise SystemExit(f"{out} was built with other arguments ({marker}); use a new -o folder")
    elif out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty and not an ablation corpus build; use a new -o folder")
    atomic.write_json(marker, params)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out, shared = args.output.resolve(), args.shared_data.resolve()
    claim_output(out, {"seed": args.seed, "scale": args.scale, "shared_data": str(shared)})
    options = RunOptions(workers=args.workers, progress=False)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    docs = build_corpus(shared, args.seed, args.scale)
    origins = origins_table(docs)
    with atomic.atomic_path(out / "origins.parquet") as temp:
        pq.write_table(origins, temp)
    write_corpus(docs, out / "corpus", args.seed)
    timings["corpus"] = round(time.perf_counter() - start, 2)
    run_pipeline(out / "corpus", out / "tree", options, timings)
    run_filters(out / "tree", out / "curated", options, timings)
    step = time.perf_counter()
    for name in SUBSETS:
        write_subset(documents_folder(out, name), out / "subsets" / name, origins)
    timings["subsets"] = round(time.perf_counter() - step, 2)
    timings["total"] = round(time.perf_counter() - start, 2)
    meta = {"seed": args.seed, "scale": args.scale, "workers": args.workers, "seconds": timings}
    summary = summarize(out, shared, origins, meta)
    atomic.write_json(out / "summary.json", summary)
    for name, info in summary["subsets"].items():
        text = ", ".join(f"{kind} {v['share_bytes']:.0%}" for kind, v in info["by_content"].items())
        copies = info["by_origin"]["duplicate"]["share_docs"]
        print(
            f"{name:<16} {info['docs']:>7,} docs {info['bytes'] / 1e6:>7.2f} MB "
            f"{info['gpt2_tokens']:>10,} tokens  text: {text}; planted copies {copies:.0%} of docs"
        )
    print(f"summary: {out / 'summary.json'}  ({timings['total']:.1f} s)")
    return summary


if __name__ == "__main__":
    main()
