"""The registry: RPv2 schema order, types, and registering signals as data."""

from __future__ import annotations

import functools

import pyarrow as pa
import pytest

from redpajama.quality_signals import registry
from redpajama.quality_signals.registry import (
    HEURISTIC_SIGNALS,
    LINE_SPANS_TYPE,
    RPV2_SCHEMA_ORDER,
    SIGNALS,
    arrow_schema,
    compute,
)
from redpajama.quality_signals.view import DocView


def test_all_29_heuristic_signals_in_rpv2_order():
    assert tuple(SIGNALS)[: len(RPV2_SCHEMA_ORDER)] == RPV2_SCHEMA_ORDER
    assert len(RPV2_SCHEMA_ORDER) == 45  # 7 ccnet + 29 heuristic + 3 classifier + 6 importance
    assert len(HEURISTIC_SIGNALS) == 29
    assert RPV2_SCHEMA_ORDER[7:36] == HEURISTIC_SIGNALS
    assert "rps_lines_ending_with_terminal_punctution_mark" in SIGNALS  # RPv2's spelling


def test_levels_families_and_types():
    for name, s in SIGNALS.items():
        assert s.name == name and s.description
        if name.startswith("rps_lines_"):
            assert s.level == "line" and s.dtype == LINE_SPANS_TYPE and s.family == "lines"
        else:
            assert s.level == "document"
    assert SIGNALS["rps_doc_word_count"].dtype == pa.int64()
    assert SIGNALS["rps_doc_ut1_blacklist"].dtype == pa.int32()
    assert SIGNALS["rps_doc_unigram_entropy"].dtype == pa.float64()
    schema = arrow_schema()
    assert schema.names == list(SIGNALS)
    assert schema.field("rps_lines_num_words").type == pa.list_(
        pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float64())])
    )


def test_top_ngram_family_is_one_parametrized_function():
    funcs = [SIGNALS[f"rps_doc_frac_chars_top_{n}gram"].func for n in (2, 3, 4)]
    assert all(isinstance(f, functools.partial) for f in funcs)
    assert len({f.func for f in funcs}) == 1
    assert [f.keywords["n"] for f in funcs] == [2, 3, 4]


def test_compute_subset_and_values_fit_the_schema():
    view = DocView("Hello world.\nBye...\n", "en")
    sub = compute(view, names=["rps_doc_word_count", "rps_lines_num_words"])
    assert sub == {"rps_doc_word_count": 3, "rps_lines_num_words": [(0, 13, 2), (13, 20, 1)]}
    values = compute(view)
    table = pa.Table.from_pylist(
        [
            {
                k: (
                    [dict(zip(("start", "end", "score"), s, strict=True)) for s in v]
                    if isinstance(v, list)
                    else v
                )
                for k, v in values.items()
            }
        ],
        schema=arrow_schema(),
    )
    assert table.num_rows == 1


def test_register_custom_signal():
    try:
        s = registry.register("my_len", lambda v, r: float(len(v)), description="length", family="custom")
        assert SIGNALS["my_len"] is s and s.dtype == pa.float64()
        assert compute(DocView("abc"), names=["my_len"]) == {"my_len": 3.0}
        with pytest.raises(ValueError):
            registry.register("my_len", lambda v, r: 0.0)
    finally:
        SIGNALS.pop("my_len", None)
