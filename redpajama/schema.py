"""The document schema: RedPajama-V2 / CCNet fields plus our keys and provenance.

Every stage reads and writes record batches of this schema. Field names and meanings follow
RPv2's documents (../shared/REFERENCE.md A.2.2); `id`/`id_int` key every row of every output
(ids.py); `metadata` keeps input fields the schema does not know, JSON-encoded, so nothing a
user had is dropped.
"""

from __future__ import annotations

import pyarrow as pa

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("id_int", pa.uint64(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("date_download", pa.string()),
        pa.field("digest", pa.string()),
        pa.field("length", pa.int64()),
        pa.field("nlines", pa.int64()),
        pa.field("source_domain", pa.string()),
        pa.field("title", pa.string()),
        pa.field("raw_content", pa.large_string()),
        pa.field("cc_segment", pa.string()),
        pa.field("original_nlines", pa.int64()),
        pa.field("original_length", pa.int64()),
        pa.field("line_ids", pa.list_(pa.int32())),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("perplexity", pa.float64()),
        pa.field("bucket", pa.string()),
        pa.field("snapshot_id", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("metadata", pa.map_(pa.string(), pa.string())),
    ]
)

FIELD_NAMES: tuple[str, ...] = tuple(DOCUMENT_SCHEMA.names)
#: Fields an input record may carry under its own name (everything but what we derive).
INPUT_FIELDS: frozenset[str] = frozenset(FIELD_NAMES) - {"metadata", "source_file"}

#: Defaults used in the output tree where a document's snapshot, language or bucket is unknown.
UNKNOWN_SNAPSHOT = "unknown"
UNKNOWN_LANGUAGE = "und"  # BCP-47 "undetermined"
UNKNOWN_BUCKET = "all"  # not yet bucketed by perplexity (the ccnet stage assigns head/middle/tail)
