"""Turn one JSON-like record (a JSONL line, a Parquet/Arrow row) into `RawDoc.fields`.

Shared by the JSONL, Parquet and HF-dataset readers so the text-field rule and the Dolma
`metadata` promotion are the same whatever the container.
"""

from __future__ import annotations

from typing import Any

_DEFAULT_TEXT_FIELDS = ("raw_content", "text")


class NoText(ValueError):
    """The record has no usable text field."""


def record_fields(record: dict[str, Any], text_field: str | None) -> dict[str, Any]:
    """Schema fields + extras of `record`, text under `raw_content`; raises `NoText`.

    Dolma puts CCNet fields in a nested `metadata` dict: its schema keys are promoted to the top
    level and its other keys kept as extras under their own names; top-level keys win on conflict
    because they are what the producer chose to expose.
    """
    candidates = (text_field,) if text_field else _DEFAULT_TEXT_FIELDS
    source = next((k for k in candidates if isinstance(record.get(k), str)), None)
    if source is None:
        raise NoText(f"no string text field among {list(candidates)}")
    fields: dict[str, Any] = {}
    meta = record.get("metadata")
    if isinstance(meta, dict):
        fields.update(meta)
    for key, value in record.items():
        if key == "metadata" and isinstance(value, dict):
            continue
        if key == source:
            continue  # the text is stored once, as raw_content
        fields[key] = value
    fields["raw_content"] = record[source]
    if fields.get("id") is not None:
        fields["id"] = str(fields["id"])
    return fields
