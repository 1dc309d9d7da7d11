"""CCNet's paragraph (line) dedup (`cc_net/dedup.py`), vectorised with numpy.

A line's key is the first 8 bytes of SHA-1 of its `normalize_for_dedup` form, read as a
little-endian uint64. Pass 1 stores, per documents file, the sorted unique keys of its documents'
lines with the number of documents holding each (a key repeated inside one document counts once:
CCNet's hash set takes a document's keys in one batch, `FlatHashSet.add`). A group of shards merges
those into one sorted array of the keys held by at least two documents of the group
(`duplicate_keys`). Pass 2 drops every line whose key is in that array, all copies, the first one
too; of a line repeated only inside its document it keeps the first copy (`finalize_doc`). A
document whose lines are all dropped is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from redpajama.pipelines.ccnet.normalize import normalize_for_dedup

KEY_DTYPE = np.dtype("<u8")


def line_keys(lines: Sequence[str]) -> np.ndarray:
    sha1 = hashlib.sha1
    digest = b"".join([sha1(normalize_for_dedup(line).encode("utf-8")).digest()[:8] for line in lines])
    return np.frombuffer(digest, dtype=KEY_DTYPE)


def document_keys(docs_lines: Sequence[Sequence[str]]) -> np.ndarray:
    """The keys of each document's distinct lines, concatenated (a document's repeats once)."""
    return np.concatenate([np.unique(line_keys(lines)) for lines in docs_lines] or [np.empty(0, KEY_DTYPE)])


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique keys, occurrences of each): of `document_keys`, the documents holding each."""
    unique, counts = np.unique(keys, return_counts=True)
    return unique.astype(KEY_DTYPE, copy=False), counts.astype(np.int64, copy=False)


def duplicate_keys(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Keys held by >= 2 documents over all `parts` ((unique keys, documents) per file); sorted."""
    if not parts:
        return np.empty(0, KEY_DTYPE)
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    total = np.zeros(len(unique), np.int64)
    np.add.at(total, inverse, counts)
    return unique[total >= 2].astype(KEY_DTYPE, copy=False)


def is_duplicate(keys: np.ndarray, duplicates: np.ndarray) -> np.ndarray:
    """Membership of each key in the sorted `duplicates` array."""
    if len(duplicates) == 0 or len(keys) == 0:
        return np.zeros(len(keys), bool)
    at = np.searchsorted(duplicates, keys)
    at[at == len(duplicates)] = 0
    return duplicates[at] == keys


@dataclass(frozen=True, slots=True)
class DedupedDoc:
    text: str
    line_ids: list[int]  # kept line indices, in CCNet's numbering (through any earlier line_ids)


def dedup_doc(
    text: str, lines: list[str], keys: np.ndarray, duplicate: np.ndarray, previous_ids: list[int] | None
) -> DedupedDoc | None:
    """CCNet `finalize_doc`: keep lines not flagged, not keyed 0, and first of their key in the doc."""
    first = np.zeros(len(keys), bool)
    first[np.unique(keys, return_index=True)[1]] = True
    keep = first & ~duplicate & (keys != 0)
    if not keep.any():
        return None
    # Earlier ids of another length do not describe these lines. cc_net's finalize_doc zips them with
    # the lines, which silently cuts the text to the shorter list; we keep every line, numbered anew.
    ids = previous_ids if previous_ids is not None and len(previous_ids) == len(lines) else None
    if keep.all():  # the common case for most lines of most documents: no rebuild
        return DedupedDoc(text=text, line_ids=list(ids) if ids is not None else list(range(len(lines))))
    kept = np.flatnonzero(keep).tolist()
    return DedupedDoc(
        text="\n".join([lines[i] for i in kept]),
        line_ids=[ids[i] for i in kept] if ids is not None else kept,
    )
