"""Local Hugging Face dataset folders, read with pyarrow only (`datasets` is not a dependency).

Two layouts: a `save_to_disk` folder (`state.json` + `dataset_info.json` + `data-*.arrow` files in
Arrow IPC *stream* format; a DatasetDict adds `dataset_dict.json` and one such folder per split),
and a hub-style folder (parquet/jsonl files, usually under `data/`). Rows come in a fixed order:
splits and files sorted by name (save_to_disk shards follow `state.json`'s `_data_files` order),
and `index` counts rows over the whole folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.ipc as ipc

from redpajama.io.readers.base import InputFileError, RawDoc, ReadOptions, RecordError
from redpajama.io.readers.jsonl import read_jsonl
from redpajama.io.readers.parquet import read_parquet, row_to_doc

_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_HUB_SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst")


def is_hf_dataset_dir(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, m)) for m in _MARKERS)


def read_hf_dataset(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    if not os.path.isdir(path):
        raise InputFileError(f"not a dataset folder: {path}")
    files = _data_files(path)
    if not files:
        raise InputFileError(f"no data files (*.arrow, *.parquet, *.jsonl) in {path}")
    base = 0
    for file in files:
        last = -1
        for item in _read_one(file, options):
            # Errors keep the file they happened in; indices run over the whole folder.
            if isinstance(item, RawDoc):
                last = item.index
                item.index += base
            else:
                if item.index is not None:
                    last = max(last, item.index)
                item = RecordError(
                    item.kind,
                    item.source_file,
                    None if item.index is None else item.index + base,
                    item.offset,
                    item.message,
                )
            yield item
        base += last + 1


def _read_one(file: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    if file.endswith(".arrow"):
        return _read_arrow_stream(file, options)
    if file.endswith(".parquet"):
        return read_parquet(file, options)
    return read_jsonl(file, options)


def _data_files(root: str) -> list[str]:
    if os.path.isfile(os.path.join(root, "dataset_dict.json")):
        with open(os.path.join(root, "dataset_dict.json"), encoding="utf-8") as f:
            splits = json.load(f).get("splits") or []
        return [f for split in sorted(splits) for f in _data_files(os.path.join(root, split))]
    state = os.path.join(root, "state.json")
    if os.path.isfile(state):
        with open(state, encoding="utf-8") as f:
            names = [d["filename"] for d in json.load(f).get("_data_files", [])]
        if names:
            return [os.path.join(root, n) for n in names]
    arrows = sorted(n for n in os.listdir(root) if n.endswith(".arrow"))
    if arrows:
        return [os.path.join(root, n) for n in arrows]
    # Hub layout: data files under data/ when it exists; never the metadata json files.
    data_dir = os.path.join(root, "data")
    found = []
    for dirpath, dirnames, filenames in os.walk(data_dir if os.path.isdir(data_dir) else root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            os.path.join(dirpath, n)
            for n in filenames
            if not n.startswith(".") and n.endswith(_HUB_SUFFIXES) and n not in _MARKERS
        ]
    return sorted(found)


def _read_arrow_stream(file: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    index = 0
    try:
        source = pa.memory_map(file, "r")
    except OSError as e:
        raise InputFileError(f"cannot open {file}: {e}") from e
    with source:
        try:
            reader = ipc.open_stream(source)
        except pa.ArrowInvalid:
            # Some writers use the IPC file format instead of the stream format.
            reader = ipc.open_file(source)
            batches: Iterator[pa.RecordBatch] = (
                reader.get_batch(i) for i in range(reader.num_record_batches)
            )
        else:
            batches = iter(reader)
        try:
            for batch in batches:
                for record in batch.to_pylist():
                    yield row_to_doc(file, index, record, options)
                    index += 1
        except (OSError, pa.ArrowException) as e:
            yield RecordError("arrow", file, index, None, f"cannot read record batch: {e}")
