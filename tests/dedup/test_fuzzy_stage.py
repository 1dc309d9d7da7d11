"""The fuzzy dedup run over small minhash trees: clusters, keep policies, partitions, reruns."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dedup_helpers import doc_ids, share_band, write_documents, write_minhash_file, write_table

from redpajama.errors import UserError
from redpajama.ids import id_int_of
from redpajama.io import markers
from redpajama.pipelines.dedup import stage, synthetic
from redpajama.pipelines.dedup.components import ReferenceUnionFind
from redpajama.pipelines.dedup.config import FuzzyConfig
from redpajama.pipelines.dedup.lsh import band_keys, signature_matrix
from redpajama.runners.local import RunOptions

OPTIONS = RunOptions(workers=1, progress=False)
FILE = "2023-14/0000/en_head.parquet"


def _run(root: Path, **config) -> dict:
    summary = stage.run(root, FuzzyConfig(**config), OPTIONS)
    assert summary.failed == {}
    return summary


def _rows(root: Path, kind: str, name: str = "fuzzy-0.8") -> dict[str, int]:
    out = {}
    for path in sorted((root / kind / name).rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["id"]] = row["cluster_id"]
    return out


@pytest.fixture
def small_tree(tmp_path, random_signatures) -> tuple[Path, list[str]]:
    """Docs 0~1 (band 0), 1~2 (band 5), 0 !~ 2; 3~4 identical; 5 = copy of 0 with a null
    signature; 6, 7 alone."""
    sig = random_signatures(8)
    share_band(sig, 0, 1, band=0)
    share_band(sig, 1, 2, band=5)
    sig[4] = sig[3]
    sig[5] = sig[0]
    valid = np.ones(8, dtype=bool)
    valid[5] = False
    ids = doc_ids(FILE, 8)
    write_minhash_file(tmp_path, FILE, ids, sig, valid)
    return tmp_path, ids


def test_transitive_clusters_min_id_and_duplicates(small_tree):
    root, ids = small_tree
    _run(root)
    clusters = _rows(root, "clusters")
    first = {ids[0], ids[1], ids[2]}
    assert set(clusters) == first | {ids[3], ids[4]}  # only members of clusters of size >= 2
    assert ids[5] not in clusters  # null signature: never clustered, though equal to doc 0
    expected_first = min(id_int_of(i) for i in first)
    assert {clusters[i] for i in first} == {expected_first}  # a~b, b~c: one cluster, a !~ c
    assert clusters[ids[3]] == clusters[ids[4]] == min(id_int_of(ids[3]), id_int_of(ids[4]))
    duplicates = _rows(root, "duplicates")
    kept = {i for i in clusters if id_int_of(i) == clusters[i]}
    assert set(duplicates) == set(clusters) - kept and len(duplicates) == 3
    table = pq.read_table(root / "clusters" / "fuzzy-0.8" / FILE)
    assert table.column_names == ["id", "id_int", "cluster_id", "shard_id"]  # RPv2's run_lsh columns
    assert set(table.column("shard_id").to_pylist()) == {"2023-14/0000/en_head.json.gz"}
    summary = json.loads((root / "_runs" / "dedup" / "summary.json").read_text())["fuzzy-0.8"]
    assert summary["clusters"] == 2 and summary["duplicates"] == 3 and summary["docs"] == 8
    assert summary["docs_with_signature"] == 7 and summary["cluster_sizes"] == {"2": 1, "3": 1}


def test_outputs_atomic_with_markers_and_reruns_are_noops(small_tree):
    root, _ = small_tree
    first = _run(root)
    assert first.tasks_run == 1
    files = sorted(p for p in (root / "clusters").rglob("*") if p.is_file()) + sorted(
        p for p in (root / "duplicates").rglob("*") if p.is_file()
    )
    data = [p for p in files if not p.name.startswith(".")]
    assert len(data) == 2 and all(markers.read_marker(p) is not None for p in data)
    assert not [p for p in files if ".tmp-" in p.name]
    mtimes = {p: p.stat().st_mtime_ns for p in data}
    again = _run(root)
    assert again.tasks_skipped == 1 and again.tasks_run == 0
    assert {p: p.stat().st_mtime_ns for p in data} == mtimes
    assert _run(root, threshold=0.9).tasks_run == 1  # other settings run
    assert (root / "clusters" / "fuzzy-0.9" / FILE).exists() and (
        root / "clusters" / "fuzzy-0.8" / FILE
    ).exists()


def _planted(root: Path) -> np.ndarray:
    spec = synthetic.PlantedSpec(docs_per_file=3000, files=4, bases=300, similarity=(0.75, 1.0), seed=3)
    return synthetic.write_planted_tree(root, spec)


def test_partition_count_does_not_change_the_result(tmp_path):
    one, seven = tmp_path / "one", tmp_path / "seven"
    _planted(one)
    _planted(seven)
    _run(one, partitions=1)
    _run(seven, partitions=7, edge_chunk=1000)  # small chunks too: the union-find sees many
    for kind in ("clusters", "duplicates"):
        paths = sorted(p.relative_to(one) for p in (one / kind).rglob("*.parquet"))
        assert paths == sorted(p.relative_to(seven) for p in (seven / kind).rglob("*.parquet"))
        for relative in paths:
            assert pq.read_table(one / relative).equals(pq.read_table(seven / relative))
    assert len(_rows(one, "clusters")) > 100


def test_matches_a_plain_dict_lsh(tmp_path):
    """Oracle: band bytes -> list of docs in a Python dict, per-edge union-find."""
    _planted(tmp_path)
    _run(tmp_path, partitions=3)
    table = pq.read_table(
        sorted((tmp_path / "minhash").rglob("*.parquet")), columns=["id", "id_int", "signature_sim0.8"]
    )
    valid, sig = signature_matrix(table.column("signature_sim0.8"))
    rows = np.flatnonzero(valid)
    buckets = defaultdict(list)
    for row, bands in zip(rows.tolist(), sig.tobytes() and sig.reshape(len(rows), 9, -1), strict=True):
        for j, band in enumerate(bands):
            buckets[(j, band.tobytes())].append(row)
    uf = ReferenceUnionFind(table.num_rows)
    for members in buckets.values():
        for other in members[1:]:
            uf.union(members[0], other)
    labels = uf.labels()
    sizes = np.bincount(labels, minlength=table.num_rows)
    ids = table.column("id").to_pylist()
    id_int = table.column("id_int").to_numpy()
    expected = {}
    for row in np.flatnonzero(sizes[labels] >= 2).tolist():
        expected[ids[row]] = int(id_int[labels == labels[row]].min())
    assert _rows(tmp_path, "clusters") == expected
    assert band_keys(sig).shape == (len(rows), 9)


def _keep_tree(root: Path, random_signatures) -> list[str]:
    """One cluster {0,1,2} and one {3,4}; documents with dates, signals with scores."""
    sig = random_signatures(5, seed=9)
    sig[1] = sig[0]
    sig[2] = sig[0]
    sig[4] = sig[3]
    ids = write_documents(
        root,
        FILE,
        date_download=[
            "2023-01-01T00:00:00Z",
            "2023-03-01T00:00:00Z",
            None,
            "2022-01-01T00:00:00Z",
            "2022-01-01T00:00:00Z",
        ],
    )
    write_minhash_file(root, FILE, ids, sig)
    write_table(
        root,
        "quality_signals",
        FILE,
        {
            "id": pa.array(ids),
            "id_int": pa.array([id_int_of(i) for i in ids], pa.uint64()),
            "score": pa.array([0.1, None, 0.9, 0.5, 0.5]),
        },
    )
    return ids


def _kept(root: Path, ids: list[str]) -> set[str]:
    return set(_rows(root, "clusters")) - set(_rows(root, "duplicates"))


def _min_id(*docs: str) -> str:
    return min(docs, key=id_int_of)


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        ("min-id", lambda ids: {_min_id(*ids[:3]), _min_id(ids[3], ids[4])}),
        ("newest", lambda ids: {ids[1], _min_id(ids[3], ids[4])}),  # equal dates: min id
        ("highest:score", lambda ids: {ids[2], _min_id(ids[3], ids[4])}),  # null score ranks lowest
    ],
)
def test_keep_policies(tmp_path, random_signatures, keep, expected):
    ids = _keep_tree(tmp_path, random_signatures)
    _run(tmp_path, keep=keep)
    assert _kept(tmp_path, ids) == expected(ids)
    clusters = _rows(tmp_path, "clusters")
    assert clusters[ids[0]] == id_int_of(_min_id(*ids[:3]))  # cluster_id stays min id_int


def test_unknown_keep_policy_and_threshold_are_errors():
    with pytest.raises(ValueError, match="keep policy"):
        FuzzyConfig(keep="oldest")
    with pytest.raises(ValueError, match="threshold"):
        FuzzyConfig(threshold=1.5)


def test_any_threshold_and_num_perm_the_minhash_stage_wrote(tmp_path):
    # RPv2's run_lsh takes --similarity and --num_perm; the layout comes from the signatures.
    from redpajama.pipelines import minhash

    words = [f"w{i}" for i in range(60)]
    text = " ".join(words)
    near = " ".join(words[:-1] + ["changed"])
    ids = write_documents(tmp_path, FILE, raw_content=[text, near, "something else entirely " * 9])
    config = minhash.MinHashConfig(thresholds=(0.85,), num_perm=64)
    assert minhash.run(tmp_path, config, OPTIONS).failed == {}
    _run(tmp_path, threshold=0.85)
    assert set(_rows(tmp_path, "duplicates", "fuzzy-0.85")) == {max(ids[:2], key=id_int_of)}
    summary = json.loads((tmp_path / "_runs" / "dedup" / "summary.json").read_text())["fuzzy-0.85"]
    assert summary["bands_rows"] == list(minhash.optimal_param(0.85, 64))


def test_a_damaged_minhash_file_is_named_before_any_work(small_tree):
    root, _ = small_tree
    path = root / "minhash" / FILE
    path.write_bytes(b"PAR1" + path.read_bytes()[4:-8] + b"garbage!")  # same size, footer gone
    with pytest.raises(UserError, match=rf"damaged minhash file: {path}: not readable as Parquet"):
        stage.run(root, FuzzyConfig(), OPTIONS)
    assert not (root / "duplicates").exists()
    path.write_bytes(b"short")
    with pytest.raises(UserError, match="5 bytes, but .* when it was written"):
        stage.run(root, FuzzyConfig(), OPTIONS)
