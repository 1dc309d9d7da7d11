"""Helpers for the dedup tests (imported by name: tests/ has no packages): tiny minhash/documents/quality_signals trees with planted bands."""

from pathlib import Path

import numpy as np
import pyarrow as pa

from redpajama.ids import id_int_of
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.dedup.synthetic import write_minhash_file

ROWS_08 = 13  # 0.8: 9 bands x 13 rows


def share_band(signatures: np.ndarray, a: int, b: int, band: int, rows: int = ROWS_08) -> None:
    """Make document b agree with document a on one band (a candidate pair at that threshold)."""
    signatures[b, band * rows : (band + 1) * rows] = signatures[a, band * rows : (band + 1) * rows]


def doc_ids(relative: str, n: int) -> list[str]:
    return [f"{relative.removesuffix('.parquet')}.json.gz/{i}" for i in range(n)]


def write_table(root: Path, component: str, relative: str, columns: dict[str, pa.Array]) -> None:
    batch = pa.RecordBatch.from_pydict(columns)
    path = root / component / relative
    writer = PartitionedWriter(root, batch.schema)
    writer.open(path)
    writer.write(path, batch)
    writer.commit()


def write_documents(root: Path, relative: str, **columns: list) -> list[str]:
    n = len(next(iter(columns.values())))
    ids = doc_ids(relative, n)
    data = {"id": pa.array(ids), "id_int": pa.array([id_int_of(i) for i in ids], pa.uint64())}
    data.update({k: pa.array(v, pa.string()) if k != "score" else pa.array(v) for k, v in columns.items()})
    write_table(root, "documents", relative, data)
    return ids


__all__ = ["doc_ids", "share_band", "write_documents", "write_minhash_file", "write_table"]
