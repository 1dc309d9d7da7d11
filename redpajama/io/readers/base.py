"""What every reader yields, and the options readers share.

A reader is a generator `read(path, options) -> Iterator[RawDoc | RecordError]`. It streams (memory
bounded by one record), never raises for a bad record (it yields a `RecordError` and goes on with
the next record it can find), and raises `InputFileError` only when the file as a whole cannot be
opened. Field mapping to the document schema, ids and routing happen later, in the ingest stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RawDoc:
    index: int  # 0-based position of the record in the file; bad records count too
    offset: int | None  # byte offset of the record in the (decompressed) stream, when known
    fields: dict[str, Any]  # schema fields under their names, anything else under its own name


@dataclass(frozen=True, slots=True)
class RecordError:
    kind: str  # short machine key: "json", "utf8", "truncated", "warc_record", "extract_timeout", ...
    source_file: str
    index: int | None  # record position, as in RawDoc.index, when known
    offset: int | None  # byte offset in the (decompressed) stream, when known
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source_file": self.source_file,
            "index": self.index,
            "offset": self.offset,
            "message": self.message,
        }


class InputFileError(Exception):
    """The file cannot be read at all (missing, unknown format, not a file of the claimed type)."""


@dataclass(kw_only=True)
class ReadOptions:
    #: JSONL/Parquet: column holding the text; None tries `raw_content` then `text`.
    text_field: str | None = None
    #: WARC: seconds allowed to extract one HTML document before it is skipped as an error.
    extract_timeout: float = 5.0
    #: WARC: keep only main content (drop navigation, footers, boilerplate).
    main_content: bool = True
    #: WARC/WET: the file's Common Crawl snapshot when the warcinfo record does not say.
    snapshot: str | None = None
    #: Text files: encoding used when the bytes are not UTF-8 (None: detect).
    encoding: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
