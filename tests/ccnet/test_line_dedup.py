"""CCNet line dedup: all copies of a line held by two documents of a group go (a repeat inside one
document keeps its first copy), groups do not leak."""

import hashlib

import numpy as np
from ccnet_helpers import cli, rows, write_jsonl

from redpajama.pipelines.ccnet.line_dedup import (
    dedup_doc,
    document_keys,
    duplicate_keys,
    is_duplicate,
    line_keys,
    unique_counts,
)

BOILER = "Copyright 2024 Example Corp. All rights reserved."
EN = [
    "The committee met on Tuesday to discuss the new budget for the city library.",
    "Several members argued that the reading rooms should stay open later in winter.",
    "A local historian explained how the building had been restored after the fire.",
    "The children's section will get new shelves and a small theatre for puppet shows.",
    "Volunteers collected more than two thousand books during the spring fair.",
    "The mayor promised to publish the final plan before the end of the month.",
]


def test_key_is_first_8_bytes_of_sha1_little_endian():
    key = line_keys(["  Hello World 42 "])[0]
    expected = int.from_bytes(hashlib.sha1(b"hello world 00").digest()[:8], "little")
    assert int(key) == expected


def test_group_counts_documents_over_files():
    # CCNet (FlatHashSet.add takes a document's keys as one batch): a key is a duplicate when two
    # documents hold it, in one file or two; repeats inside one document count once.
    a = unique_counts(document_keys([["x", "y", "y"], ["w", "v"], ["v"]]))
    b = unique_counts(document_keys([["x", "z"]]))
    dups = duplicate_keys([a, b])
    assert set(dups.tolist()) == set(line_keys(["x", "v"]).tolist())
    assert is_duplicate(line_keys(["x", "y", "z", "v", "w"]), dups).tolist() == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert unique_counts(document_keys([]))[0].size == 0


def test_dedup_doc_records_kept_ids_and_drops_inner_repeats():
    lines = ["a", "b", "a", "c"]
    keys = line_keys(lines)
    flagged = np.array([False, True, False, False])
    doc = dedup_doc("\n".join(lines), lines, keys, flagged, None)
    assert doc.text == "a\nc" and doc.line_ids == [0, 3]  # second "a" is a repeat in the doc
    doc = dedup_doc("\n".join(lines), lines, keys, flagged, [10, 11, 12, 13])
    assert doc.line_ids == [10, 13]  # an earlier dedup's numbering carries through
    assert dedup_doc("a", ["a"], line_keys(["a"]), np.array([True]), None) is None


def test_stage_removes_boilerplate_in_every_doc_and_respects_groups(tmp_path, lid_bundle):
    # shards a, b share a group (hash-group 2, sorted names); c is alone in the next group.
    write_jsonl(tmp_path / "in" / "a.jsonl", [f"{EN[0]}\n{BOILER}\n{EN[1]}", f"{EN[2]}\n{BOILER}"])
    write_jsonl(tmp_path / "in" / "b.jsonl", [f"{BOILER}\n{EN[3]}\n{EN[3]}", BOILER])
    write_jsonl(tmp_path / "in" / "c.jsonl", [f"{EN[4]}\n{EN[0]}", f"{EN[5]}\n{EN[5]}\n{EN[1]}"])
    out = tmp_path / "out"
    cli("ingest", str(tmp_path / "in"), "-o", str(out), "--workers", "1")
    cli(
        "ccnet",
        str(out),
        "--artifacts",
        str(lid_bundle),
        "--hash-group",
        "2",
        "--lang-threshold",
        "0",
        "--min-length",
        "0",
    )
    docs = rows(out)
    a0, a1, c0, c1 = docs["a/0"], docs["a/1"], docs["c/0"], docs["c/1"]
    assert a0["raw_content"] == f"{EN[0]}\n{EN[1]}" and a0["line_ids"] == [0, 2]
    assert (a0["original_nlines"], a0["nlines"]) == (3, 2)
    assert a0["original_length"] == len(f"{EN[0]}\n{BOILER}\n{EN[1]}") and a0["length"] == len(
        a0["raw_content"]
    )
    assert a1["raw_content"] == EN[2] and a1["line_ids"] == [0]
    # b/0: boilerplate gone; the line repeated only inside it keeps its first copy (CCNet counts
    # documents, not lines: FlatHashSet.add takes a document's keys at once)
    b0 = docs["b/0"]
    assert b0["raw_content"] == EN[3] and b0["line_ids"] == [1]
    assert "b/1" not in docs  # only boilerplate: empty after dedup, dropped
    # c is another group: EN[0] and EN[1] (also in a) stay; EN[5], repeated inside c/1, once
    assert c0["raw_content"] == f"{EN[4]}\n{EN[0]}"
    assert c1["raw_content"] == f"{EN[5]}\n{EN[1]}" and c1["line_ids"] == [0, 2]
    assert all(d["language"] == "en" for d in docs.values())


def test_default_drops_documents_under_ccnets_300_characters_before_dedup(tmp_path, lid_bundle):
    # cc_net's min_len (300): a shorter document goes as it is read, so its lines never count as
    # duplicates of a longer document's.
    long_doc = "\n".join(EN[:4])
    short_doc = f"{EN[0]}\n{EN[5]}"
    assert len(long_doc) >= 300 > len(short_doc)
    write_jsonl(tmp_path / "in" / "a.jsonl", [long_doc, short_doc])
    out = tmp_path / "out"
    cli("ingest", str(tmp_path / "in"), "-o", str(out), "--workers", "1")
    cli("ccnet", str(out), "--artifacts", str(lid_bundle), "--lang-threshold", "0")
    docs = rows(out)
    assert set(docs) == {"a/0"} and docs["a/0"]["raw_content"] == long_doc
