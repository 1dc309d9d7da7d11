"""The upload path end to end against a LOCAL STAND-IN FOR THE HUGGING FACE HUB.

`FakeHub` is a `http.server` on 127.0.0.1, not the Hub: it answers the few endpoints that
`HfApi.create_repo` + `HfApi.upload_folder` call on the commit-API path (Xet disabled, since the Xet
CAS protocol is not something to fake): `POST /api/repos/create`, `POST /api/validate-yaml`,
`POST /api/datasets/<repo>/preupload/<rev>`, `POST /datasets/<repo>.git/info/lfs/objects/batch`,
`PUT /lfs-upload/<oid>` (the "basic" LFS transfer it hands out), `POST /api/datasets/<repo>/commit/<rev>`
and `POST /api/datasets/<repo>/branch/<rev>`. It records every request so the tests can check what
arrived. No test talks to any other host.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_publish_folder import make_tree  # noqa: I001 - the sibling test module's tree builder

pytest.importorskip("huggingface_hub")

FAKE_TOKEN = "hf_FAKEtokenDoNotPrint0123456789abcdef"


class FakeHub:
    def __init__(self, fail_status: int | None = None, fail_times: dict[str, int] | None = None) -> None:
        self.requests: list[dict] = []
        self.lfs: dict[str, bytes] = {}
        self.commits: list[list[dict]] = []
        self.fail_status = fail_status  # answer everything with this status (and echo the auth header)
        self.fail_times = dict(fail_times or {})  # path fragment -> how many 503s before succeeding
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding") == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = self._body()
                hub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": body,
                    }
                )
                if hub.fail_status:
                    # The worst case: a server that echoes the credentials back in its error.
                    return self._send(
                        hub.fail_status, {"error": f"broken, you sent {self.headers.get('Authorization')}"}
                    )
                for fragment, left in hub.fail_times.items():
                    if fragment in self.path and left > 0:
                        hub.fail_times[fragment] = left - 1
                        return self._send(503, {"error": "try again later"})
                base = f"http://{self.headers['Host']}"
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    repo = json.loads(body)
                    return self._send(200, {"url": f"{base}/datasets/{repo['organization']}/{repo['name']}"})
                if path == "/api/validate-yaml":
                    return self._send(200, {"warnings": []})
                if "/preupload/" in path:
                    files = json.loads(body)["files"]
                    # Like the Hub: Parquet goes through LFS, the card is a regular git file.
                    modes = [
                        {
                            "path": f["path"],
                            "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular",
                            "shouldIgnore": False,
                        }
                        for f in files
                    ]
                    return self._send(200, {"files": modes})
                if path.endswith("/info/lfs/objects/batch"):
                    objects = [
                        {
                            "oid": o["oid"],
                            "size": o["size"],
                            "actions": {"upload": {"href": f"{base}/lfs-upload/{o['oid']}"}},
                        }
                        for o in json.loads(body)["objects"]
                    ]
                    return self._send(200, {"transfer": "basic", "objects": objects})
                if path.startswith("/lfs-upload/"):
                    hub.lfs[path.rsplit("/", 1)[1]] = body
                    return self._send(200, {})
                if "/commit/" in path:
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    hub.commits.append(lines)
                    repo = path.split("/commit/")[0].removeprefix("/api/")
                    return self._send(
                        200, {"commitUrl": f"{base}/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40}
                    )
                if "/branch/" in path:
                    return self._send(200, {})
                return self._send(404, {"error": f"stand-in does not implement {self.command} {path}"})

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [r["path"].split("?")[0] for r in self.requests]


def _cli_env(tmp_path: Path, hub_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {
        **env,
        "HF_TOKEN": FAKE_TOKEN,
        "HF_HOME": str(tmp_path / "hf-home"),  # no stored login of whoever runs the tests
        "HF_ENDPOINT": hub_url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1",
    }


def _publish(tmp_path: Path, hub: FakeHub, *extra: str) -> subprocess.CompletedProcess:
    tree = make_tree(tmp_path / "tree")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "redpajama",
            "publish",
            str(tree),
            "--repo-id",
            "org/web-data",
            "--endpoint",
            hub.url,
            "--max-shard-mb",
            "0.02",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=_cli_env(tmp_path, hub.url),
        timeout=120,
    )


def test_upload_reaches_the_stand_in_with_every_file(tmp_path):
    with FakeHub(fail_times={"/commit/": 1}) as hub:
        done = _publish(tmp_path, hub, "--revision", "v1")
    assert done.returncode == 0, done.stderr
    assert FAKE_TOKEN not in done.stdout + done.stderr
    paths = hub.paths()
    assert paths[0] == "/api/repos/create"
    created = json.loads(hub.requests[0]["body"])
    assert (created["name"], created["organization"], created["type"]) == ("web-data", "org", "dataset")
    assert "/api/datasets/org/web-data/branch/v1" in paths
    assert "/api/datasets/org/web-data/preupload/v1" in paths
    assert "/datasets/org/web-data.git/info/lfs/objects/batch" in paths
    # The token travels as a bearer header to the Hub's API...
    assert all(r["auth"] == f"Bearer {FAKE_TOKEN}" for r in hub.requests if r["path"].startswith("/api/"))
    # ...the commit failed once with a 503, the upload was run again, and the second commit landed.
    assert paths.count("/api/datasets/org/web-data/commit/v1") == 2 and len(hub.commits) == 1
    assert "retry:" in done.stderr

    commit = hub.commits[0]
    assert commit[0]["key"] == "header"
    lfs = {op["value"]["path"]: op["value"] for op in commit if op["key"] == "lfsFile"}
    regular = {op["value"]["path"]: op["value"] for op in commit if op["key"] == "file"}
    assert set(regular) == {"README.md"}
    card = base64.b64decode(regular["README.md"]["content"]).decode()
    assert "config_name: all" in card
    assert lfs and all(p.startswith("data/") and p.endswith(".parquet") for p in lfs)
    assert {p.split("/")[1] for p in lfs} == {"en", "de"}
    for path, value in lfs.items():
        content = hub.lfs[value["oid"]]  # the bytes arrived and match the committed oid
        assert hashlib.sha256(content).hexdigest() == value["oid"], path
        assert len(content) == value["size"]


def test_token_never_shown_when_the_server_fails(tmp_path):
    with FakeHub(fail_status=500) as hub:
        done = _publish(tmp_path, hub, "--retries", "1")
    assert done.returncode != 0
    assert hub.requests, "the stand-in was reached"
    assert FAKE_TOKEN not in done.stdout
    assert FAKE_TOKEN not in done.stderr
    assert "Error:" in done.stderr and "hf_***" in done.stderr  # the echo was cut out, not hidden


def test_no_token_is_one_line_and_no_request(tmp_path):
    with FakeHub() as hub:
        tree = make_tree(tmp_path / "tree")
        env = _cli_env(tmp_path, hub.url)
        env.pop("HF_TOKEN")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "redpajama",
                "publish",
                str(tree),
                "--repo-id",
                "org/x",
                "--endpoint",
                hub.url,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 2
    assert "no Hugging Face token" in done.stderr and "Traceback" not in done.stderr
    assert hub.requests == []
