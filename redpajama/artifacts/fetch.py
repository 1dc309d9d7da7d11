"""Download catalogue artifacts into a bundle: streamed, resumable, retried, verified, atomic.

A download goes to `<final>.part`; a rerun resumes it with an HTTP Range request. Only a file whose
size and sha256 match the catalogue (where known) is renamed into place, and the manifest is
rewritten after each file, so an interrupted fetch leaves a valid bundle plus a `.part` to resume.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from redpajama.artifacts.catalogue import Artifact
from redpajama.artifacts.manifest import sha256_file, update_manifest
from redpajama.io.atomic import commit

CHUNK = 1 << 20
USER_AGENT = "redpajama-artifacts/1"
# Client errors that a retry cannot fix; 408/429 and every 5xx are worth another try.
_PERMANENT = {400, 401, 403, 404, 405, 410, 451}


class FetchError(RuntimeError):
    """A download that failed for good (HTTP error, checksum mismatch, retries exhausted)."""


@dataclass(frozen=True)
class Fetched:
    artifact: Artifact
    path: Path
    url: str
    bytes: int
    sha256: str
    resumed_from: int
    skipped: bool = False  # already present and verified


def mirror_url(url: str, base_url: str | None) -> str:
    """`url` with scheme and host replaced by `base_url` (a mirror keeps the upstream paths)."""
    if not base_url:
        return url
    return base_url.rstrip("/") + urlsplit(url).path


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _stream(url: str, part: Path, timeout: float) -> int:
    """Append the rest of `url` to `part`; returns the offset the transfer resumed from."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return offset  # nothing left past our offset: the .part is complete (checked below)
        raise
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored Range: start over
        elif offset:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise FetchError(f"{url}: asked for bytes {offset}-, server sent {content_range!r}")
        with open(part, "ab" if offset else "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
    return offset


def download(
    url: str,
    final: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Download `url` to `final` atomically; returns the byte offset the first transfer resumed from."""
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    for attempt in range(retries + 1):
        try:
            _stream(url, part, timeout)
            break
        except urllib.error.HTTPError as exc:
            if exc.code in _PERMANENT or attempt == retries:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            if attempt == retries:
                raise FetchError(f"{url}: {exc} (after {retries + 1} attempts)") from None
        sleep(backoff * 2**attempt)
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise FetchError(f"{url}: got {got:,} bytes, expected {size:,}; the partial file was removed")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()
            raise FetchError(
                f"{url}: sha256 {actual} does not match the expected {sha256}; the download was removed"
            )
    commit(part, final)
    return resumed_from


def fetch(
    artifacts: list[Artifact],
    bundle: Path,
    *,
    base_url: str | None = None,
    force: bool = False,
    retries: int = 4,
    backoff: float = 1.0,
    on_start: Callable[[Artifact, str], None] | None = None,
) -> list[Fetched]:
    """Fetch each artifact into `bundle`, updating its manifest after every file."""
    results = []
    for artifact in artifacts:
        final = bundle / artifact.path
        url = mirror_url(artifact.url, base_url)
        if final.is_file() and not force and _verified(final, artifact):
            results.append(_record(bundle, artifact, final, url, 0, skipped=True))
            continue
        if on_start:
            on_start(artifact, url)
        resumed = download(
            url, final, size=artifact.size, sha256=artifact.sha256, retries=retries, backoff=backoff
        )
        results.append(_record(bundle, artifact, final, url, resumed))
    return results


def _verified(path: Path, artifact: Artifact) -> bool:
    if artifact.size is not None and path.stat().st_size != artifact.size:
        return False
    return artifact.sha256 is None or sha256_file(path) == artifact.sha256


def _record(
    bundle: Path, artifact: Artifact, final: Path, url: str, resumed: int, skipped: bool = False
) -> Fetched:
    digest = sha256_file(final)
    update_manifest(
        bundle,
        {
            artifact.path: {
                "artifact": artifact.name,
                "url": url,
                "licence": artifact.licence,
                "bytes": final.stat().st_size,
                "sha256": digest,
            }
        },
    )
    return Fetched(artifact, final, url, final.stat().st_size, digest, resumed, skipped)
