"""`manifest.json` of a bundle: what each file is (path, bytes, sha256), where it came from, how made.

Everything but `created` is a function of the bundle's bytes and the build inputs, so two builds of
the same config differ in that one field. The manifest is always written last (atomically): a bundle
whose manifest lists a file has that file complete.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redpajama.io.atomic import TEMP_INFIX, write_json
from redpajama.io.markers import sha256_of as sha256_file

MANIFEST = "manifest.json"
DOCS = frozenset({"SOURCE.md", "README.md"})  # documentation next to the artifacts, not an artifact
FORMAT_VERSION = 1


def _is_payload(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    hidden = any(part.startswith(".") for part in rel.parts)
    partial = path.name.endswith(".part") or TEMP_INFIX in path.name  # fetch/atomic-write leftovers
    skipped = rel.as_posix() in (MANIFEST, *DOCS)
    return path.is_file() and not hidden and not partial and not skipped


def is_payload(path: Path, root: Path) -> bool:
    return _is_payload(path, root)


def file_entries(root: Path) -> list[dict[str, Any]]:
    """Every payload file under `root` (not the manifest, temp or hidden files), sorted by path."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if _is_payload(p, root)):
        entries.append(
            {
                "path": path.relative_to(root).as_posix(),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        )
    return entries


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_manifest(
    root: Path,
    *,
    name: str,
    version: str,
    sources: dict[str, Any],
    parameters: dict[str, Any],
    created: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest; `extra` holds top-level keys consumers read directly (`dsir_hash`)."""
    manifest = {
        **(extra or {}),
        "format": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created": created or utc_now(),
        "files": file_entries(root),
        "sources": sources,
        "parameters": parameters,
    }
    write_json(root / MANIFEST, manifest)
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def update_manifest(root: Path, sources: dict[str, Any], name: str = "redpajama-artifacts") -> dict[str, Any]:
    """Re-list the files after new ones arrived (fetch), merging `sources` into the existing ones."""
    old = read_manifest(root)
    known = {"format", "name", "version", "created", "files", "sources", "parameters"}
    return write_manifest(
        root,
        name=old.get("name", name),
        version=old.get("version", "0.0.0"),
        sources={**old.get("sources", {}), **sources},
        parameters=old.get("parameters", {}),
        extra={k: v for k, v in old.items() if k not in known},
    )


def verify(root: Path) -> list[str]:
    """Problems of a bundle against its manifest (missing, wrong size, wrong sha256); [] when sound."""
    manifest = read_manifest(root)
    if not manifest:
        return [f"{root / MANIFEST}: missing"]
    problems = []
    for entry in manifest.get("files", []):
        path = root / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(f"{entry['path']}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from the manifest")
    return problems
