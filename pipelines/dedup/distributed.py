"""Connected components of the LSH candidate graph without collecting its edges on one node.

Each band partition (lsh.PartitionSpill) is processed alone: its star edges go straight into a
union-find over just the rows they touch, which is summarised as a sparse *forest*: sorted
`nodes` and `labels` (the smallest row of each node's component within that partition). Forests
are then merged pairwise in a tree: a merge sees only two forests, and treats their
(node, label) pairs as edges, so the merged labels are again the smallest row of each component
of the union of both edge sets. The root of the tree therefore holds the exact components of
the whole graph, as (node, smallest row) pairs over the clustered rows only: that is the same
labelling `UnionFind.labels()` gives (every root is the smallest row of its component).

Sizes: a partition's edges live only inside its own task; a forest is at most two arrays over
the distinct rows of its partitions (a candidate edge per band collapses to one pair per row),
and the final forest is what the driver needs anyway to write cluster ids.

The functions are pure over numpy arrays; `components_sequential` runs them in one process (the
oracle the tests compare against), `components_ray` runs partitions and merges as Ray tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redpajama.pipelines.dedup import lsh
from redpajama.pipelines.dedup.components import UnionFind


@dataclass(frozen=True)
class Forest:
    nodes: np.ndarray  # sorted distinct rows that have at least one edge
    labels: np.ndarray  # smallest row of each node's component (same dtype as nodes)
    edges: int = 0  # candidate edges that went in (the summary reports it)


def forest_of_edges(src: np.ndarray, dst: np.ndarray, dtype: type[np.unsignedinteger]) -> Forest:
    """The components of the edges (src[i], dst[i]) over the rows they touch."""
    if src.size == 0:
        empty = np.zeros(0, dtype=dtype)
        return Forest(empty, empty)
    nodes, dense = np.unique(np.concatenate([src, dst]), return_inverse=True)
    uf = UnionFind(nodes.size, np.uint32 if nodes.size < 2**32 - 1 else np.uint64)
    uf.union(dense[: src.size], dense[src.size :])
    # Dense indices are in row order, so the smallest dense index is the smallest row.
    return Forest(nodes.astype(dtype, copy=False), nodes[uf.labels()].astype(dtype, copy=False), src.size)


def partition_forest(keys: np.ndarray, rows: np.ndarray) -> Forest:
    """One band partition: its star edges, reduced to a forest right away."""
    src, dst = lsh.partition_edges(keys, rows)
    return forest_of_edges(src, dst, rows.dtype)


def merge_forests(a: Forest, b: Forest) -> Forest:
    """Components of the union of two forests' graphs (each pair node -> label is an edge)."""
    merged = forest_of_edges(
        np.concatenate([a.nodes, b.nodes]), np.concatenate([a.labels, b.labels]), a.nodes.dtype
    )
    return Forest(merged.nodes, merged.labels, a.edges + b.edges)


def labels_of(total: int, forest: Forest, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """Dense labels over all rows: a row in no edge is its own component."""
    labels = np.arange(total, dtype=dtype)
    labels[forest.nodes] = forest.labels
    return labels


def tree_reduce(forests: list, merge) -> object:
    """Pairwise merges, level by level: depth log2(n), each merge sees two inputs."""
    level = list(forests)
    while len(level) > 1:
        nxt = [merge(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def read_partition(directory: Path, p: int, rows_dtype: type[np.unsignedinteger]) -> Forest:
    """A band partition spilled by lsh.PartitionSpill, as its forest (what a worker runs)."""
    keys = np.fromfile(directory / f"part-{p:05d}.keys", dtype=np.uint64)
    rows = np.fromfile(directory / f"part-{p:05d}.rows", dtype=rows_dtype)
    return partition_forest(keys, rows)


def components_sequential(spill: lsh.PartitionSpill) -> Forest:
    """The same reduction in this process (tests; and the reference for the Ray driver)."""
    forests = [read_partition(spill.directory, p, spill.rows_dtype) for p in range(spill.partitions)]
    if not forests:
        return forest_of_edges(np.zeros(0, spill.rows_dtype), np.zeros(0, spill.rows_dtype), spill.rows_dtype)
    return tree_reduce(forests, merge_forests)


def components_ray(spill: lsh.PartitionSpill) -> Forest:
    """Partitions and merges as Ray tasks (Ray must be connected); forests stay in the object
    store and only the root forest comes back. The spill directory must be visible to every
    node (it is under the output folder, which a cluster run needs on shared storage anyway)."""
    import ray

    if spill.partitions == 0:
        return components_sequential(spill)
    read = ray.remote(max_retries=2)(read_partition)
    merge = ray.remote(max_retries=2)(merge_forests)
    directory = spill.directory.resolve()
    refs = [read.remote(directory, p, spill.rows_dtype) for p in range(spill.partitions)]
    return ray.get(tree_reduce(refs, merge.remote))
