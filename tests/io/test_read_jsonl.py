import gzip
import json

from redpajama.io.readers import ReadOptions, RecordError, read_file
from redpajama.schema import INPUT_FIELDS

CCNET_FIELDS = [
    "url",
    "date_download",
    "digest",
    "length",
    "nlines",
    "source_domain",
    "title",
    "raw_content",
    "cc_segment",
    "original_nlines",
    "original_length",
    "line_ids",
    "language",
    "language_score",
    "perplexity",
    "bucket",
]


def test_dolma_ccnet_jsonl(shared_data):
    path = shared_data / "dolma-test-warc-and-ccnet-jsonl" / "cc_en_head-0091.jsonl.gz"
    source = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    docs = list(read_file(str(path), ReadOptions()))
    assert len(docs) == len(source) == 10
    for i, (doc, src) in enumerate(zip(docs, source, strict=True)):
        assert not isinstance(doc, RecordError) and doc.index == i
        f = doc.fields
        for name in CCNET_FIELDS:
            if name == "raw_content":
                assert f[name] == src["text"]
            else:
                assert f[name] == src["metadata"][name], name
        assert f["id"] == src["id"]  # kept as given; the stage builds RPv2 ids
        assert f["provenance"] == src["metadata"]["provenance"]  # non-schema metadata kept as extra
        assert f["source"] == "common-crawl" and "text" not in f and "metadata" not in f
    assert set(CCNET_FIELDS) <= INPUT_FIELDS


def test_rpv2_documents_file_and_index_by_line(tmp_path):
    # RPv2 documents (CCNet output) at 2023-14/0000/en_head.json.gz: index = raw line number.
    folder = tmp_path / "2023-14" / "0000"
    folder.mkdir(parents=True)
    rows = [
        {"url": f"http://e.com/{i}", "raw_content": f"text {i}", "length": 6, "bucket": "head"}
        for i in range(3)
    ]
    path = folder / "en_head.json.gz"
    with gzip.open(path, "wt") as f:
        f.write(
            json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2])
        )  # blank line, no final \n
    docs = list(read_file(str(path), ReadOptions()))
    assert [d.index for d in docs] == [0, 2, 3]
    assert [d.fields["raw_content"] for d in docs] == ["text 0", "text 1", "text 2"]
    assert docs[0].fields == rows[0]


def test_text_field_rules(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [
        {"raw_content": "rc", "text": "t"},
        {"text": "t", "id": 7},
        {"body": "b"},
        {"body": "b2", "metadata": {"language": "de", "url": "meta-url", "foo": 1}, "url": "top-url"},
        [1, 2],
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items = list(read_file(str(path), ReadOptions()))
    assert items[0].fields == {"raw_content": "rc", "text": "t"}
    assert items[1].fields == {"raw_content": "t", "id": "7"}
    assert isinstance(items[2], RecordError) and items[2].kind == "no_text" and items[2].index == 2
    assert isinstance(items[3], RecordError) and items[3].kind == "no_text"
    assert isinstance(items[4], RecordError) and items[4].kind == "json" and items[4].index == 4
    custom = list(read_file(str(path), ReadOptions(text_field="body")))
    assert custom[2].fields == {"raw_content": "b"}
    assert custom[3].fields == {"raw_content": "b2", "language": "de", "url": "top-url", "foo": 1}
    assert [type(x).__name__ for x in custom] == [
        "RecordError",
        "RecordError",
        "RawDoc",
        "RawDoc",
        "RecordError",
    ]


def test_zstd_jsonl(tmp_path):
    import zstandard

    path = tmp_path / "x.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "a"}\n{"text": "b"}\n'))
    assert [d.fields["raw_content"] for d in read_file(str(path), ReadOptions())] == ["a", "b"]
