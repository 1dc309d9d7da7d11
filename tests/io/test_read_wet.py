from redpajama.io.readers import ReadOptions, RecordError, read_file
from redpajama.io.readers.warc import read_wet

# The body's blank line is kept, and so is the one separator line after it: the record ends in a
# single empty line, and cc_net's parse_doc drops the last two only when both are empty.
QUOTES = """Don't part with your illusions. When they are gone you may still exist, but you have ceased to live.
Education: that which reveals to the wise, and conceals from the stupid, the vast limits of their knowledge.

Facts are stubborn things, but statistics are more pliable.
Fiction is obliged to stick to possibilities. Truth isn't.
"""


def test_ccnet_sample_parsed_like_ccnet(shared_data):
    path = str(shared_data / "cc-wet-format-sample-cc_net" / "sample.warc.wet")
    items = list(read_file(path, ReadOptions()))
    assert not [i for i in items if isinstance(i, RecordError)]
    assert [d.index for d in items] == [0, 1, 2]
    f = [d.fields for d in items]
    # Expected values are those of the cc_net RPv2 ran (RedPajama's vendored copy, f54b86f) and of
    # cc_net's later tests/test_parse_wet_file.py: empty body lines are kept.
    assert [d["url"] for d in f] == [
        "http://sample_english.com",
        "http://sample_chinese.zh",
        "http://sample_russian.ru",
    ]
    assert [d["source_domain"] for d in f] == ["sample_english.com", "sample_chinese.zh", "sample_russian.ru"]
    assert [d["date_download"] for d in f] == [
        "2019-03-18T00:00:00Z",
        "2019-03-18T00:00:01Z",
        "2019-03-18T00:00:02Z",
    ]
    assert [d["title"] for d in f] == [
        "Famous Mark Twain Quotes",
        "馬克·吐溫名言",
        "Цитаты знаменитого Марка Твена",
    ]
    assert f[0]["raw_content"] == QUOTES
    assert f[0]["digest"] == "sha1:XQZHW7QWIG54HVAV3KPRW6MK5ILDNCER"
    assert [d["length"] for d in f] == [353, 109, 355]  # Content-Length headers, as CCNet keeps them
    assert [d["nlines"] for d in f] == [6, 5, 4]
    assert {d["snapshot_id"] for d in f} == {"2019-13"}
    assert {d["cc_segment"] for d in f} == {"CC-MAIN-20190318132220-20190318153634-00064.warc.wet.gz"}


def test_cc_wet_gz(shared_data):
    path = str(shared_data / "cc-whirlwind-cc-main-2024-22" / "whirlwind.warc.wet.gz")
    (doc,) = list(read_wet(path, ReadOptions()))
    f = doc.fields
    assert f["digest"] == "sha1:RDTSR52RUHWDA7QK4BK7OUHU3EXTXYUL"
    assert f["length"] == 4456 and f["nlines"] == 181 == len(f["raw_content"].split("\n"))
    assert f["content_language"] == "spa"
    assert f["raw_content"].startswith("Ir al contenido\nMenú principal\n")


def test_cc_segment_from_crawl_data_path(tmp_path, shared_data):
    src = shared_data / "cc-wet-format-sample-cc_net" / "sample.warc.wet"
    seg = tmp_path / "crawl-data" / "CC-MAIN-2019-13" / "segments" / "1" / "wet"
    seg.mkdir(parents=True)
    target = seg / "x.warc.wet"
    target.write_bytes(src.read_bytes())
    docs = list(read_wet(str(target), ReadOptions()))
    assert {d.fields["cc_segment"] for d in docs} == {"crawl-data/CC-MAIN-2019-13/segments/1/wet/x.warc.wet"}


def _wet(tmp_path, body: bytes, newline: bytes = b"\r\n") -> list:
    """One conversion record in Common Crawl's framing: CRLF headers, a body ending in a newline,
    then two CRLFs (the two empty lines parse_doc drops)."""
    headers = [
        b"WARC/1.0",
        b"WARC-Type: conversion",
        b"WARC-Target-URI: http://example.com/a",
        b"WARC-Date: 2024-05-18T00:00:00Z",
        b"WARC-Block-Digest: sha1:AAAA",
        b"Content-Type: text/plain",
        b"Content-Length: %d" % len(body),
    ]
    path = tmp_path / "x.warc.wet"
    path.write_bytes(newline.join(headers) + newline + newline + body + newline + newline)
    return [d.fields for d in read_wet(str(path), ReadOptions())]


def test_record_separator_dropped_and_inner_empty_lines_kept(tmp_path):
    (doc,) = _wet(tmp_path, b"Title\nfirst\n\n  second  \nthird\n")
    assert doc["title"] == "Title"
    assert doc["raw_content"] == "first\n\nsecond\nthird" and doc["nlines"] == 4


def test_bare_carriage_return_ends_a_line_as_in_text_mode(tmp_path):
    # cc_net reads WET files as text (universal newlines); CR LF is one line end, a bare CR too.
    (doc,) = _wet(tmp_path, b"Title\r\nfirst\rsecond\r\n\r\nthird\r\n")
    assert doc["raw_content"] == "first\nsecond\n\nthird" and doc["nlines"] == 4


def test_title_only_record_is_dropped(tmp_path):
    assert _wet(tmp_path, b"Title\n\n") == []


def test_empty_lines_after_a_complete_record_are_not_reported(tmp_path):
    # A record that reaches its Content-Length and the CRLF CRLF after it ends there; only
    # non-empty lines after that are reported as data of no record. A further empty line is
    # harmless and stays in the body, as cc_net keeps it.
    body = b"Title\nfirst\n"
    head = b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: http://example.com/a\r\n"
    head += b"WARC-Date: 2024-05-18T00:00:00Z\r\nContent-Length: %d\r\n\r\n" % len(body)
    path = tmp_path / "x.warc.wet"
    path.write_bytes(head + body + b"\r\n\r\n\r\n")
    (doc,) = list(read_wet(str(path), ReadOptions()))
    assert doc.fields["raw_content"] == "first\n" and doc.fields["nlines"] == 2
