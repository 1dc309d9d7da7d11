"""Input readers and the registry that picks one by file name."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator

from redpajama.io.readers.base import InputFileError, RawDoc, ReadOptions, RecordError
from redpajama.io.readers.hf_dataset import is_hf_dataset_dir, read_hf_dataset
from redpajama.io.readers.jsonl import read_jsonl
from redpajama.io.readers.parquet import read_parquet
from redpajama.io.readers.text import read_text
from redpajama.io.readers.warc import read_warc, read_wet

Reader = Callable[[str, ReadOptions], Iterator[RawDoc | RecordError]]

READERS: dict[str, Reader] = {
    "warc": read_warc,
    "wet": read_wet,
    "jsonl": read_jsonl,
    "text": read_text,
    "parquet": read_parquet,
    "hf_dataset": read_hf_dataset,
}

_COMPRESSION = ("", ".gz", ".zst", ".zstd", ".bz2")
# Checked in order: WET before WARC because ".warc.wet.gz" also contains ".warc".
_SUFFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wet", (".warc.wet", ".wet")),
    ("warc", (".warc",)),
    ("jsonl", (".jsonl", ".json", ".ndjson")),
    ("parquet", (".parquet",)),
    ("text", (".txt", ".md")),
)


def detect_format(path: str) -> str:
    """Reader name for `path`, from its name (or, for folders, the HF dataset markers)."""
    if os.path.isdir(path):
        if is_hf_dataset_dir(path):
            return "hf_dataset"
        raise InputFileError(f"folder is not a Hugging Face dataset: {path}")
    name = os.path.basename(path).lower()
    for fmt, suffixes in _SUFFIXES:
        if any(name.endswith(s + c) for s in suffixes for c in _COMPRESSION):
            return fmt
    raise InputFileError(f"unknown input format: {path}")


def read_file(path: str, options: ReadOptions, format: str | None = None) -> Iterator[RawDoc | RecordError]:
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise InputFileError(f"unknown reader {fmt!r} (known: {', '.join(READERS)})")
    if fmt != "hf_dataset" and not os.path.isfile(path):
        raise InputFileError(f"not a file: {path}")
    return READERS[fmt](path, options)


def expand_inputs(patterns: list[str], any_suffix: bool = False) -> list[str]:
    """Files, folders (walked for known formats, hidden entries skipped) and globs incl. `**`.

    A HF dataset folder is one input, not walked. `any_suffix` (the caller names the format):
    every visible file a folder or glob holds, whatever its name. Sorted, deduplicated; a pattern
    that matches nothing raises `InputFileError` naming it (and what it skipped, if anything).
    """
    found: set[str] = set()
    for pattern in patterns:
        matches = (
            sorted(glob.glob(pattern, recursive=True))
            if glob.has_magic(pattern)
            else ([pattern] if os.path.exists(pattern) else [])
        )
        explicit = not glob.has_magic(pattern)
        hits = [
            f for m in matches for f in _expand_one(m, explicit=explicit or any_suffix, walk_all=any_suffix)
        ]
        if not hits:
            skipped = [f for m in matches for f in _expand_one(m, explicit=True, walk_all=True)]
            if skipped:
                raise InputFileError(
                    f"no input of a known format in {pattern!r} ({len(skipped)} other file(s), e.g. "
                    f"{os.path.basename(skipped[0])}); --input-format FORMAT reads them as FORMAT"
                )
            raise InputFileError(f"no input matches {pattern!r}")
        found.update(hits)
    return sorted(found)


def _expand_one(path: str, explicit: bool, walk_all: bool = False) -> list[str]:
    if os.path.isdir(path):
        if is_hf_dataset_dir(path):
            return [path]
        out = []
        for dirpath, dirnames, filenames in os.walk(path):
            keep = []
            for d in sorted(dirnames):
                if d.startswith("."):
                    continue
                sub = os.path.join(dirpath, d)
                if is_hf_dataset_dir(sub):
                    out.append(sub)
                else:
                    keep.append(d)
            dirnames[:] = keep
            out += [
                os.path.join(dirpath, n)
                for n in filenames
                if not n.startswith(".") and (walk_all or _known(os.path.join(dirpath, n)))
            ]
        return out
    # An explicitly named file is kept even with an unknown suffix: --format may name its reader.
    if explicit or _known(path):
        return [path]
    return []


def _known(path: str) -> bool:
    try:
        detect_format(path)
    except InputFileError:
        return False
    return True


__all__ = [
    "READERS",
    "InputFileError",
    "RawDoc",
    "ReadOptions",
    "Reader",
    "RecordError",
    "detect_format",
    "expand_inputs",
    "read_file",
    "read_hf_dataset",
    "read_jsonl",
    "read_parquet",
    "read_text",
    "read_warc",
    "read_wet",
]
