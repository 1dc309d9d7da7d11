import pytest

from redpajama.io.readers import InputFileError, detect_format, expand_inputs
from redpajama.io.readers.extract import ExtractTimeout, extract_html


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.warc.gz", "warc"),
        ("a.warc", "warc"),
        ("a.warc.zst", "warc"),
        ("a.warc.wet.gz", "wet"),
        ("a.warc.wet", "wet"),
        ("a.wet.gz", "wet"),
        ("en_head.json.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("a.jsonl", "jsonl"),
        ("a.txt", "text"),
        ("a.md", "text"),
        ("a.txt.gz", "text"),
        ("a.parquet", "parquet"),
    ],
)
def test_detect_format(name, fmt):
    assert detect_format(name) == fmt


def test_detect_format_unknown_and_hf_dir(tmp_path):
    with pytest.raises(InputFileError):
        detect_format("a.pdf")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "state.json").write_text("{}")
    assert detect_format(str(tmp_path / "ds")) == "hf_dataset"


def test_expand_inputs(tmp_path, monkeypatch):
    for rel in [
        "a/1.jsonl",
        "a/b/2.warc.gz",
        "a/b/.hidden.jsonl",
        "a/.git/x.jsonl",
        "a/notes.pdf",
        "c.txt",
        "ds/state.json",
        "ds/data-00000-of-00001.arrow",
    ]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["a"]) == ["a/1.jsonl", "a/b/2.warc.gz"]
    assert expand_inputs(["**/*.jsonl", "a/1.jsonl", "c.txt"]) == ["a/1.jsonl", "c.txt"]
    assert expand_inputs(["."]) == ["./a/1.jsonl", "./a/b/2.warc.gz", "./c.txt", "./ds"]
    assert expand_inputs(["ds"]) == ["ds"]
    with pytest.raises(InputFileError, match="nothing-here"):
        expand_inputs(["a", "nothing-here/*.jsonl"])
    with pytest.raises(InputFileError, match="missing.jsonl"):
        expand_inputs(["missing.jsonl"])
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "page.html").write_text("<p>x</p>")
    with pytest.raises(InputFileError, match=r"1 other file\(s\), e.g. page.html.*--input-format"):
        expand_inputs(["html"])
    assert expand_inputs(["html"], any_suffix=True) == ["html/page.html"]  # the format is named
    assert expand_inputs(["a"], any_suffix=True) == ["a/1.jsonl", "a/b/2.warc.gz", "a/notes.pdf"]


def test_extract_timeout_and_normalisation():
    html = b"<html><head><title> A  title </title></head><body><p>  one  </p><p></p><div>two<br>three</div></body></html>"
    assert extract_html(html, main_content=False, timeout=5) == ("A title", "one\ntwo\nthree")
    big = b"<html><body>" + b"<div><p>word " * 200_000 + b"</body></html>"
    with pytest.raises(ExtractTimeout):
        extract_html(big, main_content=True, timeout=0.001)
