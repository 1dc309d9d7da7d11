"""The ccnet stage: documents -> documents, in place, as CCNet's `mine.py` (REFERENCE A.4).

    documents/<snapshot>/<shard>/*.parquet  (from ingest)
        -> documents/<snapshot>/<shard>/<lang>_<bucket>.parquet  (+ .ccnet.json: "this is CCNet output")

Pass 1 (`hashing`): one task per documents file hashes its lines. The shards of a snapshot,
sorted by name, form dedup groups of `hash_group` shards (default 50); each group's duplicate keys
are merged once. CCNet's `hash_in_mem` (also 50) counts its own shards, each 1/5000 of a crawl's WET
files for RPv2 (roughly 10-20 of them), so at the same number its groups span 10-20x as many WET
files as ours (one shard a file): multiply `hash_group` by the files per CCNet shard for that scope. Pass 2: one task per shard reads its files in name
order, runs `transform` batch by batch and writes the new files to a staging folder, then `swap`
replaces the shard folder in one step. Rows keep the input order and their `id`/`id_int`. A
documents file that fails to hash (damaged) fails its dedup group's shards, named with the file;
every other group runs, and a rerun after the file is repaired finishes the rest.

A shard that carries the marker is never processed again, whatever the options (its input text
is gone); a rerun on a finished tree does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redpajama import schema
from redpajama.artifacts.bundle import Bundle
from redpajama.errors import UserError
from redpajama.io import atomic, layout, markers
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.ccnet import CCNET_MIN_LENGTH, hashing, swap
from redpajama.pipelines.ccnet.language_id import identifier
from redpajama.pipelines.ccnet.perplexity import LanguageModel, language_model
from redpajama.pipelines.ccnet.transform import Models, TransformOptions, transform
from redpajama.runners.local import RunLockedError, RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

STAGE = "ccnet"
#: CCNet's `hash_in_mem` default: shards whose line hashes are merged into one dedup group.
DEFAULT_HASH_GROUP = 50
MARKER_VERSION = 1


@dataclass(kw_only=True)
class CCNetConfig:
    artifacts: str | None = None  # bundle folder; None: Bundle.default()
    lang_threshold: float = 0.5
    hash_group: int = DEFAULT_HASH_GROUP
    min_length: int = CCNET_MIN_LENGTH  # on the text before dedup; 0 keeps every length
    keep_languages: tuple[str, ...] | None = None  # None: every language (CCNet's default)
    per_line_perplexity: bool = False  # see perplexity.py: off reproduces mine.py
    batch_rows: int = 1_000

    def __post_init__(self) -> None:
        if self.hash_group < 1:
            raise ValueError("hash_group must be at least 1")
        if not 0.0 <= self.lang_threshold <= 1.0:
            raise ValueError("lang_threshold must be between 0 and 1")


@dataclass(frozen=True)
class Shard:
    snapshot: str
    name: str

    @property
    def key(self) -> str:
        return f"{layout.DOCUMENTS}/{self.snapshot}/{self.name}"

    def final(self, root: Path) -> Path:
        return root / self.key

    def staged(self, root: Path) -> Path:
        return staging_root(root) / self.key


def staging_root(root: Path) -> Path:
    # Markers of staged files are relative to this root, so they are right once the folder moves.
    return hashing.ccnet_dir(root) / "staging"


def discover(root: Path) -> list[Shard]:
    """Every shard folder of the tree, plus staged ones a killed swap left without a folder."""
    found: set[Shard] = set()
    for base in (root / layout.DOCUMENTS, staging_root(root) / layout.DOCUMENTS):
        if not base.is_dir():
            continue
        for snap in base.iterdir():
            if not snap.is_dir() or snap.name.startswith("."):
                continue
            for shard in snap.iterdir():
                if not shard.is_dir() or shard.name.startswith("."):
                    continue
                if base == root / layout.DOCUMENTS or swap.is_ccnet_output(shard):
                    found.add(Shard(snap.name, shard.name))
    return sorted(found, key=lambda s: (s.snapshot, s.name))


def came_from_ccnet(root: Path, shard: Shard) -> bool:
    """Every document of the shard already went through CCNet (e.g. ingested RPv2 documents:
    `original_nlines` set on every row), so running CCNet again would dedup and bucket twice."""
    files = input_files(root, shard)
    if not files or swap.read_shard_marker(shard.final(root)) is not None:
        return False
    for path in files:
        try:
            if "original_nlines" not in pq.read_schema(path).names:
                return False
            column = pq.read_table(path, columns=["original_nlines"]).column(0)
        except (OSError, pa.ArrowException):
            return False  # damaged: its shard's CCNet tasks fail on it, naming the file
        if len(column) == 0 or column.null_count:
            return False
    return True


def shard_record(root: Path, shard: Shard) -> dict[str, Any] | None:
    """The shard's CCNet marker, in the tree or in a complete staging folder."""
    return swap.read_shard_marker(shard.final(root)) or swap.read_shard_marker(shard.staged(root))


def input_files(root: Path, shard: Shard) -> list[Path]:
    folder = shard.final(root)
    return sorted(
        p
        for p in folder.glob("*.parquet")
        if not p.name.startswith(".") and markers.read_marker(p) is not None
    )


# --- pass 2 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    key: str
    weight: int
    snapshot: str
    shard: str
    duplicates: str | None  # the group's duplicates file, relative to the root
    hash_files: tuple[str, ...]  # this shard's pass-1 files (recorded in its marker)


def _models(config: CCNetConfig) -> Models:
    bundle = Bundle.at(config.artifacts)
    lid_path = bundle.lid_model()
    if lid_path is None:
        raise FileNotFoundError(f"no language id model in {bundle.root} (lid/lid.176.bin or .ftz)")

    def lm_for(lang: str) -> LanguageModel | None:
        paths = bundle.language_model(lang)
        return language_model(*paths) if paths else None

    return Models(lid=identifier(lid_path), language_model=lm_for, cutoffs=bundle.cutoffs)


def _destinations(staged: Path, batch: pa.RecordBatch) -> Iterator[tuple[Path, pa.RecordBatch]]:
    keys = pc.binary_join_element_wise(batch.column("language"), batch.column("bucket"), "\x00")
    for key in sorted(pc.unique(keys).to_pylist()):
        lang, bucket = key.split("\x00")
        name = f"{layout.safe_name(lang)}_{layout.safe_name(bucket)}.parquet"
        yield staged / name, batch.filter(pc.equal(keys, key))


def _recorded(record: dict[str, Any]) -> TaskResult:
    outputs = [markers.OutputMarker(**o) for o in record["outputs"]]
    return TaskResult(outputs=outputs, stats=Stats())


@dataclass(frozen=True)
class ShardWork:
    config: CCNetConfig

    def __call__(self, task: ShardTask, ctx: TaskContext) -> TaskResult:
        root = ctx.root
        shard = Shard(task.snapshot, task.shard)
        final, staged = shard.final(root), shard.staged(root)
        swap.recover(staged, final)
        if (record := swap.read_shard_marker(final)) is not None:
            return _recorded(record)  # CCNet output already: never run twice on it
        if task.duplicates is None:
            raise RuntimeError(f"{task.key}: no dedup group was prepared for this shard")
        duplicates = hashing.load_duplicates(root / task.duplicates)
        models = _models(self.config)
        options = TransformOptions(
            lang_threshold=self.config.lang_threshold,
            min_length=self.config.min_length,
            keep_languages=frozenset(self.config.keep_languages) if self.config.keep_languages else None,
            per_line_perplexity=self.config.per_line_perplexity,
        )
        stats = Stats(bytes_in=task.weight)
        drops: Counter[str] = Counter()
        writer = PartitionedWriter(staging_root(root), schema.DOCUMENT_SCHEMA)
        try:
            for path in input_files(root, shard):
                with stats.timed("read"):
                    parquet = pq.ParquetFile(path)
                for batch in parquet.iter_batches(batch_size=self.config.batch_rows):
                    batch = _conform(batch)
                    with stats.timed("ccnet"):
                        result = transform(batch, duplicates, models, options)
                    drops.update(result.drops)
                    with stats.timed("write"):
                        for destination, part in _destinations(staged, result.batch):
                            writer.write(destination, part)
                    stats.docs_in += batch.num_rows
                    ctx.progress(batch.num_rows)
            with stats.timed("write"):
                outputs = writer.commit()
        except BaseException:
            writer.abort()
            raise
        stats.docs_out = sum(o.rows for o in outputs)
        stats.bytes_out = sum(o.bytes for o in outputs)
        staged.mkdir(parents=True, exist_ok=True)
        # Written last: its presence says the staging folder is complete (swap.recover relies on it).
        swap.write_shard_marker(
            staged,
            {
                "stage": STAGE,
                "version": MARKER_VERSION,
                "outputs": [asdict(o) for o in outputs],
                "hash_files": list(task.hash_files),
                "drops": dict(sorted(drops.items())),
                "docs_in": stats.docs_in,
                "docs_out": stats.docs_out,
                "config": asdict(self.config),
            },
        )
        with stats.timed("swap"):
            swap.commit(staged, final)
        ctx.progress(0, task.weight)
        return TaskResult(outputs=outputs, stats=stats)


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    if batch.schema.equals(schema.DOCUMENT_SCHEMA):
        return batch
    columns = [
        batch.column(f.name).cast(f.type)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, f.type)
        for f in schema.DOCUMENT_SCHEMA
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema.DOCUMENT_SCHEMA)


# --- the run -------------------------------------------------------------------------------


@contextlib.contextmanager
def _run_lock(root: Path) -> Iterator[None]:
    # Covers both passes and the group merge between them (run_tasks locks each pass only).
    path = hashing.ccnet_dir(root) / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"another ccnet run is writing {root}") from None
        yield


def _groups(shards: list[Shard], size: int) -> Iterator[list[Shard]]:
    by_snapshot: dict[str, list[Shard]] = {}
    for shard in shards:
        by_snapshot.setdefault(shard.snapshot, []).append(shard)
    for snapshot in sorted(by_snapshot):
        members = sorted(by_snapshot[snapshot], key=lambda s: s.name)
        for start in range(0, len(members), size):
            yield members[start : start + size]


#: The settings that change a shard's output (batch_rows does not).
SETTINGS = (
    "artifacts",
    "lang_threshold",
    "hash_group",
    "min_length",
    "keep_languages",
    "per_line_perplexity",
)


def _setting(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    if name == "artifacts":
        return str(Bundle.at(value).root.resolve())
    return sorted(value) if name == "keep_languages" and value is not None else value


def check_settings(shard: Shard, record: dict[str, Any], config: CCNetConfig) -> None:
    """CCNet rewrites a shard in place, once: a rerun with other settings cannot redo it, so it
    is refused instead of reported done."""
    done, wanted = record.get("config", {}), asdict(config)
    changed = [n for n in SETTINGS if n in done and _setting(done, n) != _setting(wanted, n)]
    if changed:
        raise UserError(
            f"{shard.key} went through CCNet with other settings: "
            + "; ".join(f"{n} {done[n]!r} there, {wanted[n]!r} asked" for n in changed),
            "CCNet rewrites the documents in place: ingest again into another -o folder to change them",
        )


def run(
    output: str | os.PathLike[str], config: CCNetConfig | None = None, options: RunOptions | None = None
) -> RunSummary:
    """Run CCNet over every shard of `output`'s documents tree; resumable, a no-op when done."""
    config = config or CCNetConfig()
    options = options or RunOptions()
    root = Path(output)
    found = discover(root)
    if not found:
        raise FileNotFoundError(
            f"no shard folders under {root / layout.DOCUMENTS}; run `redpajama ingest ... -o {root}` first"
        )
    shards = [s for s in found if not came_from_ccnet(root, s)]
    with _run_lock(root):
        records = {s: shard_record(root, s) for s in shards}
        for shard, record in records.items():
            if record is not None:
                check_settings(shard, record, config)
        pending = [s for s in shards if records[s] is None]
        if pending:
            _models(config)  # fail before any work when the bundle has no language id model
        hash_tasks: list[hashing.HashTask] = []
        hash_files: dict[Shard, tuple[str, ...]] = {}
        sources: dict[Shard, set[str]] = {}
        for shard in pending:
            files = input_files(root, shard)
            outs = []
            sources[shard] = set()
            for path in files:
                rel = path.relative_to(root).as_posix()
                sources[shard].add(rel)
                out = hashing.hash_file(root, rel, config.min_length).relative_to(root).as_posix()
                hash_tasks.append(hashing.HashTask(rel, path.stat().st_size, out, config.min_length))
                outs.append(out)
            hash_files[shard] = tuple(outs)
        for shard, record in records.items():
            if record is not None:
                hash_files[shard] = tuple(record.get("hash_files", ()))
        if hash_tasks:
            hashed = run_tasks(
                hashing.HASH_STAGE,
                hash_tasks,
                hashing.HashWork(config.batch_rows),
                root,
                RunOptions(workers=options.workers, progress=options.progress),
                clean_dirs=[hashing.ccnet_dir(root) / "hashes"],
            )
            blocked = _blocked_by_hashing(shards, sources, hashed.failed, config.hash_group)
        else:
            blocked = {}
        duplicates: dict[Shard, str] = {}
        for group in _groups(shards, config.hash_group):
            if not any(records[s] is None for s in group) or any(s.key in blocked for s in group):
                continue
            members = [m for s in group for m in hash_files[s]]
            path = hashing.group_file(root, group[0].snapshot, members)
            hashing.merge_group(root, path, members)
            for shard in group:
                duplicates[shard] = path.relative_to(root).as_posix()
        tasks = [
            ShardTask(
                key=s.key,
                weight=sum(p.stat().st_size for p in input_files(root, s)),
                snapshot=s.snapshot,
                shard=s.name,
                duplicates=duplicates.get(s),
                hash_files=hash_files[s],
            )
            for s in shards
            if s.key not in blocked
        ]
        summary = run_tasks(STAGE, tasks, ShardWork(config), root, options, clean_dirs=[staging_root(root)])
        atomic.write_json(hashing.ccnet_dir(root) / "drops.json", drop_totals(root, shards))
        if blocked:
            summary = replace(
                summary, tasks_total=summary.tasks_total + len(blocked), failed={**blocked, **summary.failed}
            )
        return summary


def _blocked_by_hashing(
    shards: list[Shard], sources: dict[Shard, set[str]], failed: dict[str, str], group_size: int
) -> dict[str, str]:
    """Shard key -> why it cannot run: a documents file of its line-dedup group failed to hash (a
    damaged file). The group's other pending shards (those in `sources`) wait too, since their
    duplicate set would lack its lines; shards already done stay done, and every other group goes on."""
    blocked: dict[str, str] = {}
    for group in _groups(shards, group_size):
        bad = sorted(
            (key, reason) for s in group for key, reason in failed.items() if key in sources.get(s, ())
        )
        if not bad:
            continue
        key, reason = bad[0]
        more = f" (and {len(bad) - 1} more file(s))" if len(bad) > 1 else ""
        for shard in (s for s in group if s in sources):
            where = "" if key in sources[shard] else " of its line-dedup group"
            blocked[shard.key] = f"line hashing failed for {key}{where}{more}: {reason}"
    return blocked


def drop_totals(root: Path, shards: list[Shard] | None = None) -> dict[str, int]:
    """Documents dropped by reason, over every processed shard of the tree."""
    totals: Counter[str] = Counter()
    for shard in shards if shards is not None else discover(root):
        record = swap.read_shard_marker(shard.final(root))
        if record:
            totals.update(record.get("drops", {}))
    return dict(sorted(totals.items()))
