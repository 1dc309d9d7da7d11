"""Document ids.

RPv2 rule (../shared/REFERENCE.md A.2.7): `id = "<snapshot>/<shard>/<lang>_<bucket>.json.gz/<line>"`
where the prefix is the input path matched from the first `dddd-dd/` on, and
`id_int` = the first 8 bytes of SHA-1(id) read as a little-endian uint64 (RPv2 uses the host byte
order; every machine it ran on is little-endian, so we fix little-endian for portability).

Other inputs: an `id` field in the record is kept as is; otherwise `id = "<shard>/<index>"`, the
output shard name and the 0-based record position in the input file (bad records count, so ids
stay stable when a broken record is later repaired). `id_int` is always SHA-1 of the id, so ids
from every source share one key space.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

RPV2_URI_RE = re.compile(r"\b\d{4}-\d{2}\b/.*")


def id_int_of(doc_id: str) -> int:
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little", signed=False)


def id_ints_of(doc_ids: list[str]) -> np.ndarray:
    return np.fromiter((id_int_of(i) for i in doc_ids), dtype=np.uint64, count=len(doc_ids))


def rpv2_uri_id(path: str) -> str | None:
    """The RPv2 `uri_id` of an input path, or None when the path is not laid out as RPv2's."""
    match = RPV2_URI_RE.search(path.replace("\\", "/"))
    return match.group(0) if match else None


def rpv2_doc_id(uri_id: str, index: int) -> str:
    return f"{uri_id}/{index}"


def local_doc_id(shard: str, index: int) -> str:
    return f"{shard}/{index}"
