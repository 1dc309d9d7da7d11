"""Reference corpora on disk -> documents (str), and fingerprints of the inputs for the manifest.

Readers stream: a corpus of any size costs memory only for the documents a builder keeps.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redpajama.io.markers import sha256_of as sha256_file
from redpajama.pipelines.artifacts.config import BuildConfig, SourceConfig


class CorpusError(ValueError):
    """A corpus path that matches nothing, or a JSONL line without the text field."""


def source_files(source: SourceConfig, config: BuildConfig) -> list[Path]:
    """Files of a source, globs expanded and sorted so every run reads the same order."""
    files: list[Path] = []
    for pattern in source.paths:
        resolved = config.resolve(pattern)
        matches = sorted(glob.glob(resolved, recursive=True)) if glob.has_magic(resolved) else [resolved]
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            raise CorpusError(f"no file matches {pattern!r} (resolved to {resolved})")
        files.extend(Path(m) for m in matches)
    return files


def _open_text(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


# WikiText-2 is Moses-tokenized with `@-@`-style escapes and <unk>: undo what makes it unlike prose.
_WIKITEXT_ESCAPES = re.compile(r" @([-,.])@ ")
_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]}]|'s\b|n't\b|'re\b|'ve\b|'ll\b|'d\b|'m\b)")
_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def detokenize_wikitext(line: str) -> str:
    line = line.replace(" <unk>", "").replace("<unk> ", "").replace("<unk>", "")
    line = _WIKITEXT_ESCAPES.sub(r"\1", line)
    line = _SPACE_BEFORE.sub(r"\1", line)
    return _SPACE_AFTER.sub(r"\1", line).strip()


def _units(text: str, unit: str) -> Iterator[str]:
    if unit == "file":
        if text.strip():
            yield text.strip()
    elif unit == "line":
        yield from (line.strip() for line in text.splitlines() if line.strip())
    else:
        yield from (block.strip() for block in re.split(r"\n\s*\n", text) if block.strip())


def _file_units(path: Path, source: SourceConfig) -> Iterator[str]:
    if source.format == "jsonl":
        with _open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record: dict[str, Any] = json.loads(line)
                if source.text_field not in record:
                    raise CorpusError(f"{path}:{number}: no field {source.text_field!r}")
                yield str(record[source.text_field])
        return
    if source.format == "html":
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        raw = path.read_bytes()
        # Whole-page text, boilerplate included: what an unfiltered crawl sample looks like.
        text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=False)
        yield from _units(text, source.unit)
        return
    if source.format == "wikitext":
        with _open_text(path) as handle:
            for line in handle:
                stripped = line.strip()
                if stripped and not stripped.startswith("= "):  # headings: " = Title = "
                    text = detokenize_wikitext(stripped)
                    if text:
                        yield text
        return
    if source.unit == "line":
        with _open_text(path) as handle:
            yield from (line.strip() for line in handle if line.strip())
        return
    with _open_text(path) as handle:
        yield from _units(handle.read(), source.unit)


def iter_documents(source: SourceConfig, config: BuildConfig) -> Iterator[str]:
    """Documents of a source in a fixed order: units of each file, `group` of them joined by newlines."""
    for part in source.parts:
        yield from iter_documents(part, config)
    for path in source_files(source, config):
        buffer: list[str] = []
        for unit in _file_units(path, source):
            buffer.append(unit)
            if len(buffer) == source.group:
                doc = "\n".join(buffer)
                buffer = []
                if len(doc) >= source.min_chars:
                    yield doc
        if buffer and len("\n".join(buffer)) >= source.min_chars:
            yield "\n".join(buffer)


def fingerprint(source: SourceConfig, config: BuildConfig) -> dict[str, Any]:
    """What a manifest records about a source: the config as written plus each input's sha256."""
    if source.parts:
        return {"parts": [fingerprint(part, config) for part in source.parts]}
    files = source_files(source, config)
    base = config.base_dir
    inputs = []
    for path in files:
        # Relative to the config's folder: never an absolute path of the build machine.
        shown = os.path.relpath(path.resolve(), base.resolve())
        inputs.append({"path": shown, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return {
        "paths": list(source.paths),
        "format": source.format,
        "unit": source.unit,
        "group": source.group,
        "min_chars": source.min_chars,
        "files": inputs,
    }
