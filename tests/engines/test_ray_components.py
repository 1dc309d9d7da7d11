"""Distributed connected components (pipelines/dedup/distributed.py) against the local union-find:
the pure functions run sequentially here, and as Ray tasks when Ray is installed."""

from pathlib import Path

import numpy as np
import pytest

from redpajama.pipelines.dedup import distributed, lsh
from redpajama.pipelines.dedup.components import ReferenceUnionFind, UnionFind


def _random_graph(n: int, edges: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, size=edges).astype(np.uint32)
    # Mostly short hops, so there are long chains (many merge rounds), plus a few long ones.
    dst = np.where(
        rng.random(edges) < 0.9, (src + rng.integers(1, 4, size=edges)) % n, rng.integers(0, n, size=edges)
    )
    return src, dst.astype(np.uint32)


def _local_labels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    uf = UnionFind(n)
    uf.union(src, dst)
    return uf.labels()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_tree_of_partition_forests_equals_union_find(seed: int, parts: int):
    n = 2_000
    src, dst = _random_graph(n, 600 + 300 * seed, seed)
    split = np.array_split(np.arange(src.size), parts)
    forests = [distributed.forest_of_edges(src[i], dst[i], np.uint32) for i in split]
    merged = distributed.tree_reduce(forests, distributed.merge_forests)
    labels = distributed.labels_of(n, merged, np.uint32)
    expected = _local_labels(n, src, dst)
    np.testing.assert_array_equal(labels, expected)
    assert merged.edges == src.size
    # And against the textbook oracle, for the min-row labelling convention.
    oracle = ReferenceUnionFind(n)
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        oracle.union(a, b)
    np.testing.assert_array_equal(labels, oracle.labels())


def test_no_edges_every_row_alone():
    empty = np.zeros(0, np.uint32)
    forest = distributed.forest_of_edges(empty, empty, np.uint32)
    np.testing.assert_array_equal(distributed.labels_of(5, forest, np.uint32), np.arange(5))


def _spill(tmp_path: Path, n: int, partitions: int, seed: int = 0) -> lsh.PartitionSpill:
    rng = np.random.default_rng(seed)
    # Band keys from a small pool, so many rows share a band key (candidate groups).
    keys = rng.integers(0, n // 3, size=(n, 9)).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    spill = lsh.PartitionSpill(tmp_path / "spill", partitions, np.uint32)
    spill.add(keys[: n // 2], np.arange(n // 2))
    spill.add(keys[n // 2 :], np.arange(n // 2, n))
    spill.close()
    return spill


def _spill_labels_local(spill: lsh.PartitionSpill, n: int) -> tuple[np.ndarray, int]:
    uf, count = UnionFind(n), 0
    for p in range(spill.partitions):
        src, dst = lsh.partition_edges(*spill.read(p))
        uf.union(src, dst)
        count += src.size
    return uf.labels(), count


def test_spilled_partitions_sequential_equals_local(tmp_path: Path):
    n = 3_000
    spill = _spill(tmp_path, n, partitions=5)
    expected, count = _spill_labels_local(spill, n)
    forest = distributed.components_sequential(spill)
    np.testing.assert_array_equal(distributed.labels_of(n, forest, np.uint32), expected)
    assert forest.edges == count


def test_spilled_partitions_on_ray_equals_local(tmp_path: Path):
    pytest.importorskip("ray")
    from ray_helpers import local_ray

    n = 3_000
    spill = _spill(tmp_path, n, partitions=6, seed=1)
    expected, count = _spill_labels_local(spill, n)
    with local_ray():
        forest = distributed.components_ray(spill)
    np.testing.assert_array_equal(distributed.labels_of(n, forest, np.uint32), expected)
    assert forest.edges == count
