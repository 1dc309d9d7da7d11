"""Connected components over dense row indices: a union-find held in one numpy array.

`UnionFind` takes edges in large chunks and works on whole arrays, never per edge in Python:

- find: path halving applied to every queried node at once (each step points a node at its
  grandparent), so paths shrink geometrically across calls;
- union: each unresolved edge hooks the larger root under the smaller one (`np.minimum.at`
  resolves several edges hooking the same root). The invariant parent[i] <= i makes the forest
  acyclic under simultaneous hooks, which union by size cannot promise for a batch, and makes
  every root the smallest row of its component. Edges that lost a race retry until all agree.

`ReferenceUnionFind` is the textbook per-edge version (path halving, union by size): the oracle.
Memory: one array of n row indices (4 bytes each below 2^32 rows) plus the edge chunk.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    def __init__(self, n: int, dtype: type[np.unsignedinteger] = np.uint32) -> None:
        self.parent = np.arange(n, dtype=dtype)

    def find(self, nodes: np.ndarray) -> np.ndarray:
        parent = self.parent
        x = nodes.astype(parent.dtype, copy=True)
        active = np.arange(x.size)
        while active.size:
            cur = x[active]
            p = parent[cur]
            moving = p != cur
            active, cur, p = active[moving], cur[moving], p[moving]
            grand = parent[p]
            parent[cur] = grand  # path halving
            x[active] = grand
        return x

    def union(self, u: np.ndarray, v: np.ndarray) -> None:
        while u.size:
            ru, rv = self.find(u), self.find(v)
            differ = ru != rv
            if not differ.any():
                return
            ru, rv = ru[differ], rv[differ]
            lo, hi = np.minimum(ru, rv), np.maximum(ru, rv)
            np.minimum.at(self.parent, hi, lo)
            u, v = hi, lo  # the roots stand for their edges on the next round

    def labels(self) -> np.ndarray:
        """Root (= smallest row) of every row's component; compresses the forest fully."""
        labels = self.parent
        while True:
            nxt = labels[labels]
            if np.array_equal(nxt, labels):
                return labels
            labels = nxt
            self.parent = labels


class ReferenceUnionFind:
    """Per-edge union-find with path halving and union by size (test oracle, slow)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def labels(self) -> np.ndarray:
        """Smallest row of every row's component (same convention as `UnionFind.labels`)."""
        roots = np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)
        smallest = np.full(len(roots), len(roots), dtype=np.int64)
        np.minimum.at(smallest, roots, np.arange(len(roots)))
        return smallest[roots]
