"""`artifacts fetch` against a local HTTP server (never the real internet)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redpajama.artifacts.catalogue import Artifact
from redpajama.artifacts.fetch import FetchError, download, fetch, mirror_url
from redpajama.artifacts.manifest import read_manifest, verify
from redpajama.cli.app import _register_verbs, app

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range `Range: bytes=N-` support (SimpleHTTPRequestHandler has none)."""

    requests: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def send_head(self):
        RangeHandler.requests.append(f"{self.path} {self.headers.get('Range', '')}")
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().send_head()
        start = int(spec.removeprefix("bytes=").split("-")[0])
        size = path.stat().st_size
        if start >= size:
            self.send_error(416)
            return None
        handle = open(path, "rb")
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return handle


@pytest.fixture()
def server(tmp_path: Path):
    root = tmp_path / "www"
    (root / "models").mkdir(parents=True)
    (root / "models" / "good.bin").write_bytes(PAYLOAD)
    (root / "models" / "bad.bin").write_bytes(b"not what the catalogue promised")
    wikiref = root / "redpajama-data-v2/v1.0.0/artifacts/wikiref.model.bin"
    wikiref.parent.mkdir(parents=True)
    wikiref.write_bytes(b"fake fastText model")
    handler = partial(RangeHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def artifact(name: str, path: str, **kw) -> Artifact:
    return Artifact(name, f"https://upstream.invalid/models/{name}.bin", path, "test", **kw)


GOOD = artifact("good", "lid/lid.176.bin", size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())


def test_mirror_url_keeps_the_upstream_path():
    assert mirror_url("https://a.b/x/y.bin", "http://m:8/") == "http://m:8/x/y.bin"
    assert mirror_url("https://a.b/x/y.bin", None) == "https://a.b/x/y.bin"


def test_fetch_verifies_and_updates_the_manifest(server, tmp_path):
    bundle = tmp_path / "bundle"
    [got] = fetch([GOOD], bundle, base_url=server)
    assert (bundle / "lid/lid.176.bin").read_bytes() == PAYLOAD
    assert got.sha256 == GOOD.sha256 and got.resumed_from == 0
    manifest = read_manifest(bundle)
    assert manifest["sources"]["lid/lid.176.bin"]["url"] == f"{server}/models/good.bin"
    assert verify(bundle) == []
    assert not list(bundle.rglob("*.part"))
    # already there and verified: no second request
    before = len(RangeHandler.requests)
    [again] = fetch([GOOD], bundle, base_url=server)
    assert again.skipped and len(RangeHandler.requests) == before


def test_resume_from_a_partial_file(server, tmp_path):
    final = tmp_path / "bundle" / "lid" / "lid.176.bin"
    final.parent.mkdir(parents=True)
    final.with_name("lid.176.bin.part").write_bytes(PAYLOAD[:30_000])
    resumed = download(f"{server}/models/good.bin", final, size=GOOD.size, sha256=GOOD.sha256)
    assert resumed == 30_000
    assert final.read_bytes() == PAYLOAD
    assert RangeHandler.requests[-1] == "/models/good.bin bytes=30000-"


def test_checksum_mismatch_deletes_and_says_so(server, tmp_path):
    bad = artifact("bad", "classifiers/en/wikiref.model.bin", sha256="0" * 64)
    with pytest.raises(FetchError, match="sha256 .* does not match"):
        fetch([bad], tmp_path / "bundle", base_url=server)
    target = tmp_path / "bundle" / "classifiers/en/wikiref.model.bin"
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


def test_404_names_the_url(server, tmp_path):
    missing = artifact("nothere", "lm/en.sp.model")
    with pytest.raises(FetchError, match=rf"{server}/models/nothere.bin: HTTP 404"):
        fetch([missing], tmp_path / "bundle", base_url=server, backoff=0)


def test_connection_errors_are_retried_then_reported(tmp_path):
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="after 3 attempts"):
        download("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", retries=2, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0]


def test_cli_fetch_and_list(server, tmp_path):
    _register_verbs()
    bundle = tmp_path / "bundle"
    runner = CliRunner()
    result = runner.invoke(app, ["artifacts", "fetch", "nope", "-o", str(bundle), "--base-url", server])
    assert result.exit_code != 0 and "unknown artifact" in result.output
    result = runner.invoke(app, ["artifacts", "fetch", "wikiref", "-o", str(bundle), "--base-url", server])
    assert result.exit_code == 0, result.output
    assert (bundle / "classifiers/en/wikiref.model.bin").read_bytes() == b"fake fastText model"
    result = runner.invoke(
        app, ["artifacts", "fetch", "ccnet-en", "-o", str(bundle), "--base-url", server, "--retries", "0"]
    )
    assert result.exit_code != 0
    assert f"{server}/cc_net/lm/en.arpa.bin: HTTP 404" in str(result.exception)

    result = runner.invoke(app, ["artifacts", "list", "--artifacts", str(bundle)])
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "wikiref.model.bin" in row)
    assert "classifier:wikiref" in line and f"{server}/redpajama-data-v2" in line and " en " in line
    assert "lm/en.arpa.bin" in result.output and "redpajama artifacts fetch ccnet-en" in result.output
    assert "redpajama artifacts fetch lid" in result.output
