"""The tokenize stage: a curated Parquet folder -> shuffled, split, packed token shards + index.json."""

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers
from typer.testing import CliRunner

from redpajama.cli.app import _register_verbs, app
from redpajama.errors import UserError
from redpajama.io import atomic
from redpajama.training import tokenize as stage
from redpajama.training.token_shards import INDEX_NAME, TokenShards
from redpajama.training.tokenize import TokenizeConfig, is_held_out, run
from redpajama.training.tokenizer import load_tokenizer

SHARD = 1000  # small shards: documents and windows cross shard boundaries


@pytest.fixture(scope="module")
def gpt2():
    return load_tokenizer("gpt2")


@pytest.fixture(scope="module")
def documents(shared_data: Path) -> list[tuple[str, str | None]]:
    """(id, text) of ~170 real documents: English paragraphs, five languages, empty and null texts."""
    wiki = (shared_data / "lm-wikitext-2-valid-test" / "test.txt").read_text(encoding="utf-8")
    texts: list[str | None] = [p for p in wiki.split("\n \n") if p.strip()][:120]
    for path in sorted((shared_data / "debian-reference-multilingual" / "txt").glob("*.txt.gz")):
        book = gzip.decompress(path.read_bytes()).decode("utf-8")
        texts += [book[i : i + 700] for i in range(20_000, 27_000, 700)]
    texts[5] = ""
    texts[17] = None
    texts[60] = "emoji 😀👍🏽, odd\u00a0space\u3000and a literal <|endoftext|> in the text"
    return [(f"2023-14/0000/en_head.json.gz/{i}", t) for i, t in enumerate(texts)]


def _write_curated(root: Path, docs: list[tuple[str, str | None]], files: int = 3) -> Path:
    """Our tree: documents/<snapshot>/<shard>/<lang>_<bucket>.parquet, plus folders tokenize must skip."""
    names = ["documents/2023-14/0000/en_head.parquet", "documents/2023-14/0000/de_middle.parquet"]
    names += [f"documents/2023-14/{k:04d}/en_tail.parquet" for k in range(1, files - 1)]
    for k, name in enumerate(sorted(names)[:files]):
        part = docs[k::files]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {"id": [d for d, _ in part], "raw_content": pa.array([t for _, t in part], pa.large_string())}
        )
        pq.write_table(table, path, row_group_size=17)
    decoy = pa.table({"id": ["decoy"], "raw_content": ["must never be read"]})
    for skipped in ("dropped/2023-14/0000/en_head.parquet", "_runs/filter/x.parquet"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(decoy, root / skipped)
    return root


def _order_read(root: Path) -> list[tuple[str, str]]:
    """Documents in the order the stage must read them: sorted file paths, then row order."""
    files = sorted((root / "documents").rglob("*.parquet"), key=lambda p: p.relative_to(root).as_posix())
    rows = []
    for path in files:
        table = pq.read_table(path)
        rows += [
            (i, t or "")
            for i, t in zip(table["id"].to_pylist(), table["raw_content"].to_pylist(), strict=True)
        ]
    return rows


def _expected(rows, tokenizer, seed: int, fraction: float) -> dict[str, list[int]]:
    permutation = np.random.default_rng(seed).permutation(len(rows))
    streams: dict[str, list[int]] = {"train": [], "held_out": []}
    for i in permutation:
        doc_id, text = rows[i]
        streams["held_out" if is_held_out(doc_id, fraction) else "train"] += tokenizer.encode(text) + [
            tokenizer.eos_id
        ]
    return streams


def _stream(folder: Path, split: str) -> list[int]:
    shards = TokenShards.open(folder, split, verify=True)
    return shards.tokens(0, shards.n_tokens).tolist()


def _documents_of(stream: list[int], eos: int) -> Counter:
    docs, current = Counter(), []
    for token in stream:
        if token == eos:
            docs[tuple(current)] += 1
            current = []
        else:
            current.append(token)
    assert not current, "the stream must end with EOS"
    return docs


def _config(**overrides) -> TokenizeConfig:
    return TokenizeConfig(**{"shard_tokens": SHARD, "held_out_fraction": 0.2, **overrides})


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory, documents, gpt2):
    root = _write_curated(tmp_path_factory.mktemp("curated"), documents)
    out = tmp_path_factory.mktemp("tokens")
    summary = run(root, out, _config(seed=3))
    return root, out, summary


def test_streams_equal_the_documents_shuffled_by_the_seed(tokenized, gpt2):
    root, out, summary = tokenized
    rows = _order_read(root)
    expected = _expected(rows, gpt2, seed=3, fraction=0.2)
    assert _stream(out, "train") == expected["train"]
    assert _stream(out, "held_out") == expected["held_out"]
    assert summary.documents == len(rows) and not summary.skipped
    assert summary.tokens == sum(len(gpt2.encode(t)) + 1 for _, t in rows)


def test_counts_eos_shards_and_index(tokenized, gpt2, documents):
    _, out, summary = tokenized
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["dtype"] == "uint16" and index["eos_id"] == 50256 and index["vocab_size"] == 50257
    assert index["tokenizer"]["spec"] == "gpt2" and index["seed"] == 3
    assert index["source"]["files"] == 3  # dropped/ and _runs/ are not read
    eos_total = 0
    for split in ("train", "held_out"):
        entry = index["splits"][split]
        stream = _stream(out, split)
        assert entry["tokens"] == len(stream) == summary.splits[split].tokens
        assert stream.count(50256) == entry["documents"]  # a literal <|endoftext|> in text is no EOS
        eos_total += entry["documents"]
        sizes = [s["n_tokens"] for s in entry["shards"]]
        assert (
            all(size == SHARD for size in sizes[:-1]) and 0 < sizes[-1] <= SHARD and sum(sizes) == len(stream)
        )
        for shard in entry["shards"]:
            data = (out / shard["file"]).read_bytes()
            assert len(data) == 2 * shard["n_tokens"] and hashlib.sha256(data).hexdigest() == shard["sha256"]
    assert eos_total == len(documents)
    held = index["splits"]["held_out"]["documents"]
    assert 0.1 * len(documents) < held < 0.3 * len(documents)
    assert sorted(p.name for p in out.glob("*.bin")) == sorted(
        s["file"] for e in index["splits"].values() for s in e["shards"]
    )


def test_another_seed_reorders_the_same_documents(tokenized, tmp_path, gpt2):
    root, out, _ = tokenized
    other = tmp_path / "seed4"
    run(root, other, _config(seed=4))
    for split in ("train", "held_out"):
        first, second = _stream(out, split), _stream(other, split)
        assert first != second
        assert _documents_of(first, gpt2.eos_id) == _documents_of(second, gpt2.eos_id)


def test_held_out_split_does_not_depend_on_the_other_documents(tokenized, tmp_path, documents, gpt2):
    _, out, _ = tokenized
    kept = documents[::3]
    smaller = _write_curated(tmp_path / "smaller", kept, files=2)
    run(smaller, tmp_path / "tokens", _config(seed=3))
    full_held = _documents_of(_stream(out, "held_out"), gpt2.eos_id)
    kept_encoded = Counter(tuple(gpt2.encode(t or "")) for _, t in kept)
    expected = full_held & kept_encoded
    assert _documents_of(_stream(tmp_path / "tokens", "held_out"), gpt2.eos_id) == expected
    assert sum(expected.values()) > 5


def test_rerun_is_a_noop_and_other_settings_need_overwrite(tokenized, tmp_path):
    root, out, _ = tokenized
    before = _snapshot(out)
    again = run(root, out, _config(seed=3))
    assert again.skipped and again.documents == tokenized[2].documents
    assert _snapshot(out) == before
    with pytest.raises(UserError, match="seed"):
        run(root, out, _config(seed=5))
    assert _snapshot(out) == before
    copy = tmp_path / "copy"
    run(root, copy, _config(seed=3))
    run(root, copy, _config(seed=5), overwrite=True)
    assert json.loads((copy / INDEX_NAME).read_text())["seed"] == 5
    run(root, copy, _config(seed=3), overwrite=True)
    assert {k: v[1] for k, v in _snapshot(copy).items()} == {k: v[1] for k, v in before.items()}


def test_a_crashed_run_leaves_no_index_and_the_rerun_writes_the_same_bytes(tokenized, tmp_path, monkeypatch):
    root, out, _ = tokenized
    crashed = tmp_path / "crashed"
    commits = []
    real_commit = atomic.commit

    def commit_then_die(temp, final):
        commits.append(final)
        if len(commits) == 4:
            raise KeyboardInterrupt  # killed after three shards were committed
        real_commit(temp, final)

    monkeypatch.setattr(atomic, "commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(root, crashed, _config(seed=3))
    monkeypatch.undo()
    assert not (crashed / INDEX_NAME).exists() and len(list(crashed.glob("*.bin"))) == 3
    (crashed / ".train-00009.bin.tmp-99999").write_bytes(b"left by a killed process")
    with pytest.raises(UserError, match=INDEX_NAME):
        TokenShards.open(crashed)
    run(root, crashed, _config(seed=3))
    expected = {k: v[1] for k, v in _snapshot(out).items()}
    assert {k: v[1] for k, v in _snapshot(crashed).items()} == expected


def test_damaged_output_is_rewritten_and_unreadable_index_is_a_user_error(tokenized, tmp_path):
    root, out, _ = tokenized
    damaged = tmp_path / "damaged"
    run(root, damaged, _config(seed=3))
    shard = damaged / "train-00001.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(UserError, match="train-00001.bin"):
        TokenShards.open(damaged)
    shard.unlink()
    with pytest.raises(UserError, match="train-00001.bin.*missing"):
        TokenShards.open(damaged)
    assert not run(root, damaged, _config(seed=3)).skipped  # incomplete: redone without --overwrite
    assert _stream(damaged, "train") == _stream(out, "train")
    (damaged / INDEX_NAME).write_text("{truncated")
    with pytest.raises(UserError, match=INDEX_NAME):
        TokenShards.open(damaged)
    (damaged / INDEX_NAME).write_text(json.dumps({"version": 1, "splits": {}}))
    with pytest.raises(UserError, match=f"{INDEX_NAME}.*vocab_size"):
        TokenShards.open(damaged)
    with pytest.raises(UserError, match="no split 'test'"):
        TokenShards.open(out, "test")


def test_plain_tree_with_text_column_and_bad_inputs(tmp_path, gpt2):
    plain = tmp_path / "plain" / "part"
    plain.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["b", "a"], "text": ["second file", None]}), plain / "b.parquet")
    pq.write_table(pa.table({"id": ["c"], "text": ["first file"]}), plain / "a.parquet")
    run(tmp_path / "plain", tmp_path / "t", _config(held_out_fraction=0.0, seed=0))
    rows = [("c", "first file"), ("b", "second file"), ("a", "")]
    assert _stream(tmp_path / "t", "train") == _expected(rows, gpt2, seed=0, fraction=0.0)["train"]
    assert TokenShards.open(tmp_path / "t", "held_out").n_tokens == 0

    no_id = tmp_path / "no_id"
    no_id.mkdir()
    pq.write_table(pa.table({"text": ["x"]}), no_id / "x.parquet")
    with pytest.raises(UserError, match=r"x\.parquet: no `id`"):
        run(no_id, tmp_path / "o1", _config())
    null_id = tmp_path / "null_id"
    null_id.mkdir()
    pq.write_table(pa.table({"id": [None, None], "text": ["x", "y"]}), null_id / "n.parquet")
    with pytest.raises(UserError, match=r"no readable documents.*n\.parquet: rows 0-1: `id` is null"):
        run(null_id, tmp_path / "o2", _config())
    with pytest.raises(UserError, match="no text column"):
        run(null_id, tmp_path / "o3", _config(text_field="body"))
    with pytest.raises(UserError, match="no \\*.parquet"):
        run(tmp_path / "o3", tmp_path / "o4", _config())
    with pytest.raises(UserError, match="not a folder"):
        run(tmp_path / "missing", tmp_path / "o5", _config())
    with pytest.raises(UserError, match="held-out fraction"):
        _config(held_out_fraction=1.0)


def _damage_row_group(path: Path, group: int) -> None:
    """Overwrite the first page header of `group`'s text column chunk, so that group alone will not read."""
    chunk = pq.ParquetFile(path).metadata.row_group(group).column(1)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


def test_damaged_files_cost_only_their_own_rows(tmp_path, documents, gpt2):
    """A file that will not open, a row group that will not read and null ids are left out, named by
    file and rows; every other document is tokenized as if the damaged rows had never been there."""
    src = tmp_path / "src"
    src.mkdir()
    docs = [(d, t) for d, t in documents[:90]]
    table = lambda part: pa.table({"id": [d for d, _ in part], "text": [t for _, t in part]})  # noqa: E731
    pq.write_table(table(docs[:30]), src / "a.parquet", row_group_size=10)
    pq.write_table(table(docs[30:60]), src / "b.parquet", row_group_size=10, compression="NONE")
    _damage_row_group(src / "b.parquet", 1)
    (src / "c.parquet").write_bytes(b"PAR1 not a parquet file")
    nulls = [(None if 3 <= i < 6 else d, t) for i, (d, t) in enumerate(docs[60:90])]
    pq.write_table(pa.table({"id": [d for d, _ in nulls], "text": [t for _, t in nulls]}), src / "d.parquet")

    summary = run(src, tmp_path / "t", _config(seed=5))
    assert [(Path(e.file).name, e.first_row, e.rows) for e in summary.lost] == [
        ("b.parquet", 10, 10),
        ("c.parquet", 0, None),
        ("d.parquet", 3, 3),
    ]
    assert "row group 1 unreadable" in summary.lost[0].reason and "\n" not in summary.lost[0].reason
    assert summary.lost[2].describe().endswith("d.parquet: rows 3-5: `id` is null")
    kept = docs[:30] + docs[30:40] + docs[50:60] + [d for d in nulls if d[0] is not None]
    expected = _expected([(d, t or "") for d, t in kept], gpt2, seed=5, fraction=0.2)
    assert _stream(tmp_path / "t", "train") == expected["train"]
    assert _stream(tmp_path / "t", "held_out") == expected["held_out"]
    assert summary.documents == len(kept) and summary.error_rate == pytest.approx(13 / (len(kept) + 13))
    assert "1 file(s) could not be read" in summary.verdict(max_error_rate=1.0)

    # The rerun does nothing and reports the same loss, from index.json.
    again = run(src, tmp_path / "t", _config(seed=5))
    assert again.skipped and again.lost == summary.lost

    # Without the unreadable file, the share of lost rows decides.
    (src / "c.parquet").unlink()
    rest = run(src, tmp_path / "t2", _config(seed=5))
    assert rest.verdict(max_error_rate=0.2) is None
    assert "above the maximum 5.00%" in rest.verdict(max_error_rate=0.05)


def test_cli_tokenize_names_lost_rows_and_fails(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(pa.table({"id": ["a", None, "c"], "text": ["x", "y", "z"]}), src / "n.parquet")
    _register_verbs()
    runner = CliRunner()
    args = ["tokenize", str(src), "-o", str(tmp_path / "t"), "--no-progress"]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1
    assert (
        "n.parquet: row 1: `id` is null" in failed.output
        and "tokenize failed: lost rows 33.33%" in failed.output
    )
    passed = runner.invoke(app, [*args, "--max-error-rate", "0.5", "--format", "json"])
    assert passed.exit_code == 0, passed.output
    assert "`id` is null" in passed.output and json.loads(passed.stdout)["lost"][0]["first_row"] == 1


def test_large_vocabulary_is_stored_as_uint32(tmp_path):
    backend = HFTokenizer(
        models.WordLevel({"[UNK]": 0, "a": 1, "b": 70_000, "<|endoftext|>": 69_999}, "[UNK]")
    )
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.save(str(tmp_path / "big.json"))
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["a b zzz", "b"]}), src / "d.parquet")
    run(src, tmp_path / "t", _config(tokenizer=str(tmp_path / "big.json"), held_out_fraction=0.0))
    index = json.loads((tmp_path / "t" / INDEX_NAME).read_text())
    assert (index["dtype"], index["vocab_size"], index["eos_id"]) == ("uint32", 70_001, 69_999)
    stream = _stream(tmp_path / "t", "train")
    assert sorted(stream) == sorted([1, 70_000, 0, 69_999, 70_000, 69_999])
    assert (tmp_path / "t" / "train-00000.bin").stat().st_size == 4 * len(stream)


def test_cli_tokenize_json_then_noop(tokenized, tmp_path):
    root, out, _ = tokenized
    _register_verbs()
    runner = CliRunner()
    args = ["tokenize", str(root), "-o", str(tmp_path / "cli"), "--shard-tokens", str(SHARD)]
    args += ["--held-out-fraction", "0.2", "--seed", "3", "--no-progress"]
    first = runner.invoke(app, [*args, "--format", "json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["documents"] == tokenized[2].documents and summary["tokens_per_second"] > 0
    assert _stream(tmp_path / "cli", "train") == _stream(out, "train")
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "nothing to do" in second.output and "held_out" in second.output
    changed = runner.invoke(app, [*args[:-1], "--seed", "9"])
    assert changed.exit_code != 0 and isinstance(changed.exception, UserError)
    help_text = runner.invoke(app, ["tokenize", "--help"], env={"COLUMNS": "200"})
    assert (
        help_text.exit_code == 0
        and "Example" in help_text.output
        and "--held-out-fraction" in help_text.output
    )


def test_gather_handles_documents_larger_than_a_gather(tokenized, monkeypatch, tmp_path):
    root, out, _ = tokenized
    monkeypatch.setattr(stage, "GATHER_TOKENS", 50)  # most documents alone, some grouped
    run(root, tmp_path / "small_gathers", _config(seed=3))
    assert _stream(tmp_path / "small_gathers", "train") == _stream(out, "train")
