"""The seven ccnet_* signals: the document's CCNet fields as floats (REFERENCE A.1.1)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from redpajama.pipelines.signals import signal_batch, signals_schema
from redpajama.quality_signals.ccnet import FIELDS
from redpajama.quality_signals.registry import SIGNALS, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView

NAMES = tuple(FIELDS.values())
RESOURCES = Resources(stop_words={"en": frozenset()}, ldnoobw={})  # no bundle: nothing to load


def ccnet(fields=None, text: str = "Some text.\nMore.") -> dict:
    return compute(DocView(text, "en", fields=fields), RESOURCES, NAMES)


def test_registered_first_in_rpv2_order_as_float_document_signals():
    assert tuple(SIGNALS)[:7] == (
        "ccnet_length",
        "ccnet_original_length",
        "ccnet_nlines",
        "ccnet_original_nlines",
        "ccnet_language_score",
        "ccnet_perplexity",
        "ccnet_bucket",
    )
    for name in NAMES:
        assert SIGNALS[name].level == "document" and SIGNALS[name].dtype == pa.float64()
        assert not SIGNALS[name].int_scores  # RPv2 writes float(record.length): 1264.0


def test_values_are_the_fields_as_floats():
    fields = {
        "length": 1264,
        "original_length": 2000,
        "nlines": 12,
        "original_nlines": 30,
        "language_score": 0.97,
        "perplexity": 251.3,
        "bucket": "middle",
    }
    got = ccnet(fields)
    assert got == {
        "ccnet_length": 1264.0,
        "ccnet_original_length": 2000.0,
        "ccnet_nlines": 12.0,
        "ccnet_original_nlines": 30.0,
        "ccnet_language_score": 0.97,
        "ccnet_perplexity": 251.3,
        "ccnet_bucket": 1.0,
    }
    assert all(type(v) is float for v in got.values())


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [("head", 0.0), ("middle", 1.0), ("tail", 2.0), ("all", None), ("Head", None), ("", None), (None, None)],
)
def test_bucket_mapping(bucket, expected):
    assert ccnet({"bucket": bucket})["ccnet_bucket"] == expected


def test_null_fields_and_no_fields_give_nulls():
    assert set(ccnet(None).values()) == {None}
    assert set(ccnet({}).values()) == {None}
    got = ccnet({"length": None, "perplexity": 100.0, "bucket": None})
    assert got["ccnet_length"] is None and got["ccnet_perplexity"] == 100.0 and got["ccnet_bucket"] is None


def test_stage_batch_reads_the_fields_when_present_and_nulls_otherwise():
    base = {
        "id": pa.array(["a", "b"]),
        "id_int": pa.array([1, 2], pa.uint64()),
        "raw_content": pa.array(["one doc", ""]),
        "language": pa.array(["en", "de"]),
        "source_domain": pa.array([None, None], pa.string()),
    }
    schema = signals_schema(NAMES)
    with_fields = pa.RecordBatch.from_pydict(
        {
            **base,
            "length": pa.array([7, None], pa.int64()),
            "perplexity": pa.array([55.5, 900.0]),
            "bucket": pa.array(["head", "tail"]),
        }
    )
    out = signal_batch(with_fields, NAMES, RESOURCES, schema).to_pylist()
    assert [r["ccnet_length"] for r in out] == [7.0, None]
    assert [r["ccnet_perplexity"] for r in out] == [55.5, 900.0]
    assert [r["ccnet_bucket"] for r in out] == [0.0, 2.0]
    assert [r["ccnet_nlines"] for r in out] == [None, None]  # column absent from the file
    ingest_only = signal_batch(pa.RecordBatch.from_pydict(base), NAMES, RESOURCES, schema).to_pylist()
    assert all(r[name] is None for r in ingest_only for name in NAMES)
