"""Exact dedup: Bloom filter accuracy, newest-first order, RPv2's duplicates columns, reruns."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from dedup_helpers import write_documents

from redpajama.io import markers
from redpajama.pipelines.dedup import exact
from redpajama.pipelines.dedup.bloom import BloomFilter, key_hashes
from redpajama.pipelines.dedup.config import ExactConfig
from redpajama.pipelines.dedup.keep import InputFile
from redpajama.runners.local import RunOptions

OPTIONS = RunOptions(workers=1, progress=False)


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_bloom_false_positive_rate_near_configured(rate):
    bloom = BloomFilter(20_000, rate)
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=40_000)
    inserted = [int(k).to_bytes(8, "little") for k in keys[:20_000]]
    assert not bloom.add(*key_hashes(inserted)).any()  # distinct keys, empty filter: none seen
    assert bloom.contains(*key_hashes(inserted)).all()  # no false negatives
    fp = bloom.contains(*key_hashes(int(k).to_bytes(8, "big") + b"x" for k in keys[20_000:])).mean()
    assert rate * 0.6 < fp < rate * 1.4


def test_bloom_add_sees_repeats_within_and_across_batches():
    bloom = BloomFilter(100, 0.01)
    np.testing.assert_array_equal(bloom.add(*key_hashes([b"a", b"b", b"a"])), [False, False, True])
    np.testing.assert_array_equal(bloom.add(*key_hashes([b"b", b"c"])), [True, False])
    assert bloom.count == 3


def _tree(root: Path) -> dict[str, list[str]]:
    ids = {}
    ids["old"] = write_documents(root, "2022-05/0000/en_head.parquet", digest=["sha1:AAA", "sha1:BBB", None])
    ids["new"] = write_documents(
        root, "2023-14/0000/en_head.parquet", digest=["sha1:BBB", "sha1:AAA", "sha1:AAA"]
    )
    ids["new2"] = write_documents(root, "2023-14/0001/en_middle.parquet", digest=["sha1:CCC", "sha1:BBB"])
    return ids


def _duplicates(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "duplicates" / "exact").rglob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def test_newest_snapshot_copy_survives_and_rpv2_columns(tmp_path):
    ids = _tree(tmp_path)
    summary = exact.run(tmp_path, ExactConfig(), OPTIONS)
    assert summary.failed == {}
    dups = _duplicates(tmp_path)
    dropped = {r["id"] for r in dups}
    assert set(ids["old"][:2]) <= dropped and ids["old"][2] not in dropped  # no digest: kept
    assert ids["new"][2] in dropped  # the repeat within the newest snapshot
    # Exactly one copy of each digest is left, and AAA's survivor is in the newest snapshot.
    assert len(dups) == 4  # 7 keyed documents, 3 distinct digests
    assert ids["new"][1] not in dropped
    row = next(r for r in dups if r["id"] == ids["old"][0])
    assert row["shard_id"] == "2022-05/0000/en_head.json.gz"
    assert row["doc_id"] == "2022-05/0000/en_head.json.gz/0" == row["id"]
    assert row["digest"] == "AAA"
    for path in (tmp_path / "duplicates" / "exact").rglob("*.parquet"):
        assert markers.read_marker(path) is not None
    assert exact.run(tmp_path, ExactConfig(), OPTIONS).tasks_skipped == 1


def test_order_within_snapshot_is_deterministic(tmp_path):
    files = [InputFile(relative=f"2023-14/{i:04d}/en_head.parquet", start=0, rows=1) for i in range(20)]
    files += [InputFile(relative="2024-10/0000/en_head.parquet", start=0, rows=1)]
    order = exact.processing_order(list(reversed(files)))
    assert order[0].relative.startswith("2024-10")
    assert order == exact.processing_order(files)
    assert [f.relative for f in order[1:]] != sorted(f.relative for f in order[1:])  # shuffled
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a)
    _tree(b)
    exact.run(a, ExactConfig(), OPTIONS)
    exact.run(b, ExactConfig(), OPTIONS)
    assert _duplicates(a) == _duplicates(b)


def _rpv2_order(listing: list[str], seed: int = 42) -> list[str]:
    """RPv2's bloomfilter.py `__parallel_run` order with one reader, restated: random.seed once,
    shuffle the listing, group by snapshot (first-seen order kept), newest snapshot first, and
    shuffle each group with the same stream."""
    import random
    import re

    rng = random.Random(seed)
    uris = list(listing)
    rng.shuffle(uris)
    snapshots: dict[str, list[str]] = {}
    for uri in uris:
        snapshots.setdefault(re.search(r"\b\d{4}-\d{2}\b", uri).group(0), []).append(uri)
    order = []
    for snapshot in sorted(snapshots, reverse=True):
        rng.shuffle(snapshots[snapshot])
        order += snapshots[snapshot]
    return order


def test_file_order_is_rpv2s_for_a_sorted_listing():
    listing = sorted(
        f"{snapshot}/{shard:04d}/{lang}_{bucket}.parquet"
        for snapshot in ("2023-06", "2023-14", "2022-49")
        for shard in range(4)
        for lang in ("de", "en")
        for bucket in ("head", "middle")
    )
    files = [InputFile(relative=r, start=0, rows=1) for r in reversed(listing)]
    assert [f.relative for f in exact.processing_order(files)] == _rpv2_order(listing)


def test_default_reads_head_and_middle_of_a_ccnet_tree(tmp_path):
    # RPv2's bloomfilter lists <lang>_{head,middle}.json.gz only: a tail copy never wins.
    head = write_documents(tmp_path, "2023-14/0000/en_head.parquet", digest=["sha1:SAME"])
    for shard in range(3):
        write_documents(tmp_path, f"2023-14/{shard:04d}/en_tail.parquet", digest=["sha1:SAME"])
    exact.run(tmp_path, ExactConfig(), OPTIONS)
    assert head[0] not in {r["id"] for r in _duplicates(tmp_path)}
    assert not (tmp_path / "duplicates" / "exact" / "2023-14" / "0000" / "en_tail.parquet").exists()
    assert exact.unread_documents(tmp_path, ExactConfig()) == {"tail": 3}
    every = tmp_path / "every"
    for shard in range(3):
        write_documents(every, f"2023-14/{shard:04d}/en_raw.parquet", digest=["sha1:SAME"])
    exact.run(every, ExactConfig(), OPTIONS)
    assert len(_duplicates(every)) == 2  # no CCNet buckets: every file is read


def test_snapshots_without_a_crawl_date_come_last():
    files = [
        InputFile(relative=f"{snapshot}/0000/en_head.parquet", start=0, rows=1)
        for snapshot in ("unknown", "2023-14", "2024-10", "2019-13")
    ]
    order = [f.relative.split("/")[0] for f in exact.processing_order(files)]
    assert order == ["2024-10", "2023-14", "2019-13", "unknown"]


def test_doc_id_is_the_source_line_of_an_ingested_shard(tmp_path):
    # RPv2's doc_id counts lines of the json.gz shard, blank and corrupt ones too; ingest keeps
    # that line in the id, while the Parquet row position skips the lines it could not read.
    import gzip
    import subprocess
    import sys

    src = tmp_path / "src" / "2023-14" / "0000"
    src.mkdir(parents=True)
    doc = {"raw_content": "same text", "digest": "sha1:AAA"}
    lines = [json.dumps(doc), "{not json", json.dumps({**doc, "digest": "sha1:BBB"}), json.dumps(doc)]
    with gzip.open(src / "en_head.json.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    out = tmp_path / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "redpajama",
            "ingest",
            str(tmp_path / "src"),
            "-o",
            str(out),
            "--max-error-rate",
            "0.5",
        ],
        check=True,
        capture_output=True,
    )
    exact.run(out, ExactConfig(), OPTIONS)
    (dup,) = _duplicates(out)
    assert dup["shard_id"] == "2023-14/0000/en_head.json.gz"
    assert dup["doc_id"] == "2023-14/0000/en_head.json.gz/3" == dup["id"]  # the 4th line, 3rd row


def test_text_key(tmp_path):
    ids = write_documents(
        tmp_path,
        "2023-14/0000/en_head.parquet",
        digest=["sha1:A", "sha1:B", "sha1:C"],
        raw_content=["x", "y", "x"],
    )
    exact.run(tmp_path, ExactConfig(key="text"), OPTIONS)
    assert [r["id"] for r in _duplicates(tmp_path)] == [ids[2]]
