"""Token shards as one stream, and the training loader: windows, shuffling, ranks, resume, epochs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from redpajama.errors import UserError
from redpajama.training.loader import SequenceLoader, held_out_batches
from redpajama.training.token_shards import (
    FORMAT_VERSION,
    INDEX_NAME,
    TokenShards,
    dtype_for,
    file_sha256,
    shard_name,
)

SEQ = 7
SHARD_SIZES = (100, 37, 250, 1, 113)  # windows of 8 tokens cross every boundary
N_TOKENS = sum(SHARD_SIZES)  # 501 = 71 * 7 + 4: 71 full windows


def _write_shards(folder: Path, stream: np.ndarray, sizes, vocab_size: int = 50257) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dtype = dtype_for(vocab_size)
    shards, start = [], 0
    for k, size in enumerate(sizes):
        path = folder / shard_name("train", k)
        path.write_bytes(stream[start : start + size].astype(dtype).tobytes())
        shards.append({"file": path.name, "n_tokens": int(size), "sha256": file_sha256(path)})
        start += size
    index = {
        "version": FORMAT_VERSION,
        "vocab_size": vocab_size,
        "eos_id": vocab_size - 1,
        "dtype": dtype.name,
        "splits": {
            "train": {"documents": 0, "tokens": int(start), "shards": shards},
            "held_out": {"documents": 0, "tokens": 0, "shards": []},
        },
    }
    (folder / INDEX_NAME).write_text(json.dumps(index))


@pytest.fixture()
def stream() -> np.ndarray:
    # Distinct values, so a window identifies its position; some above 2**15 to catch sign errors.
    return (np.arange(N_TOKENS, dtype=np.int64) * 97) % 50257


@pytest.fixture()
def shards(tmp_path: Path, stream) -> TokenShards:
    _write_shards(tmp_path / "tokens", stream, SHARD_SIZES)
    return TokenShards.open(tmp_path / "tokens", verify=True)


def _window_index(stream: np.ndarray, row: torch.Tensor) -> int:
    (hits,) = np.nonzero(stream[: N_TOKENS - SEQ] == int(row[0]))
    (i,) = [h // SEQ for h in hits if h % SEQ == 0]
    assert torch.equal(row, torch.from_numpy(stream[i * SEQ : i * SEQ + SEQ]))
    return i


def _windows(stream: np.ndarray, batch: tuple[torch.Tensor, torch.Tensor]) -> list[int]:
    inputs, targets = batch
    assert inputs.dtype == targets.dtype == torch.int64 and inputs.shape == targets.shape
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    indices = [_window_index(stream, row) for row in inputs]
    for i, target in zip(indices, targets, strict=True):
        assert int(target[-1]) == stream[i * SEQ + SEQ]
    return indices


def test_windows_tile_the_stream_across_shard_boundaries(shards, stream):
    assert shards.n_tokens == N_TOKENS and shards.vocab_size == 50257 and shards.eos_id == 50256
    assert shards.sequences(SEQ) == (N_TOKENS - 1) // SEQ == 71
    windows = [shards.window(i, SEQ) for i in range(shards.sequences(SEQ))]
    assert all(w.dtype == np.int64 and len(w) == SEQ + 1 for w in windows)
    assert np.array_equal(np.concatenate([w[:-1] for w in windows]), stream[: 71 * SEQ])
    assert [int(w[-1]) for w in windows] == stream[SEQ : 72 * SEQ : SEQ].tolist()
    assert np.array_equal(shards.tokens(0, N_TOKENS), stream)
    assert shards.sequences(1) == N_TOKENS - 1 and shards.sequences(N_TOKENS - 1) == 1
    assert shards.sequences(N_TOKENS) == 0
    with pytest.raises(IndexError):
        shards.window(71, SEQ)


def test_one_epoch_reads_each_window_once_in_the_seeded_order(shards, stream):
    loader = SequenceLoader(shards, SEQ, batch_size=4, seed=11)
    assert loader.batches_per_epoch == 71 // 4 == 17
    seen = [i for _ in range(17) for i in _windows(stream, next(loader))]
    assert seen == np.random.default_rng([11, 0]).permutation(71)[:68].tolist()
    assert len(set(seen)) == 68  # the incomplete last batch (3 windows) is dropped
    # The epoch boundary: batch 18 is the first of epoch 1, in epoch 1's own order.
    assert (loader.epoch, loader.step) == (0, 17)
    first_of_next = _windows(stream, next(loader))
    assert (loader.epoch, loader.step) == (1, 1)
    assert first_of_next == np.random.default_rng([11, 1]).permutation(71)[:4].tolist()
    other_seed = SequenceLoader(shards, SEQ, batch_size=4, seed=12)
    assert _windows(stream, next(other_seed)) != seen[:4]


def test_resume_reproduces_the_uninterrupted_batches(shards):
    uninterrupted = SequenceLoader(shards, SEQ, batch_size=4, seed=5)
    expected = [next(uninterrupted) for _ in range(8)]
    first = SequenceLoader(shards, SEQ, batch_size=4, seed=5)
    for _ in range(5):
        next(first)
    state = first.state_dict()
    resumed = SequenceLoader(shards, SEQ, batch_size=4, seed=5)
    resumed.load_state_dict(state)
    for got, want in zip([next(resumed) for _ in range(3)], expected[5:8], strict=True):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_resume_at_the_end_of_an_epoch_continues_into_the_next(shards):
    uninterrupted = SequenceLoader(shards, SEQ, batch_size=8, seed=0)
    per_epoch = uninterrupted.batches_per_epoch
    expected = [next(uninterrupted)[0] for _ in range(per_epoch + 2)]
    first = SequenceLoader(shards, SEQ, batch_size=8, seed=0)
    for _ in range(per_epoch):
        next(first)
    resumed = SequenceLoader(shards, SEQ, batch_size=8, seed=0)
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(next(resumed)[0], expected[per_epoch])
    assert torch.equal(next(resumed)[0], expected[per_epoch + 1])
    with pytest.raises(ValueError, match="global_batch"):
        SequenceLoader(shards, SEQ, batch_size=4, seed=0).load_state_dict(first.state_dict())


@pytest.mark.parametrize("world_size", [2, 3])
def test_rank_slices_together_equal_the_single_process_batch(shards, world_size):
    single = SequenceLoader(shards, SEQ, batch_size=2 * world_size, seed=9)
    ranks = [SequenceLoader(shards, SEQ, 2, 9, rank=r, world_size=world_size) for r in range(world_size)]
    assert ranks[0].batches_per_epoch == single.batches_per_epoch
    for _ in range(single.batches_per_epoch + 3):  # across an epoch boundary too
        inputs, targets = next(single)
        parts = [next(loader) for loader in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), inputs)
        assert torch.equal(torch.cat([p[1] for p in parts]), targets)
    with pytest.raises(ValueError, match="rank 2"):
        SequenceLoader(shards, SEQ, 2, 9, rank=2, world_size=2)


def test_a_split_smaller_than_one_global_batch_is_a_user_error(shards):
    with pytest.raises(UserError, match="fewer than one global batch"):
        SequenceLoader(shards, SEQ, batch_size=36, seed=0, world_size=2)


def test_held_out_batches_are_the_first_windows_in_order(shards, stream):
    batches = list(held_out_batches(shards, SEQ, batch_size=5, max_batches=3))
    assert [_windows(stream, b) for b in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    everything = list(held_out_batches(shards, SEQ, batch_size=10))
    assert [len(b[0]) for b in everything] == [10] * 7 + [1]
    assert [len(b[0]) for b in held_out_batches(shards, SEQ, batch_size=10, drop_last=True)] == [10] * 7
    assert _windows(stream, everything[-1]) == [70]


def test_uint32_shards_read_back_exactly(tmp_path):
    stream = np.array([0, 70_000, 65_535, 65_536, 1, 2**20, 5, 6, 7], dtype=np.int64)
    _write_shards(tmp_path / "big", stream, (4, 5), vocab_size=2**21)
    shards = TokenShards.open(tmp_path / "big")
    assert np.array_equal(shards.tokens(0, 9), stream)
    assert shards.window(1, 4).tolist() == stream[4:9].tolist()


def test_missing_index_and_shard_mismatch_name_the_file(tmp_path, stream):
    with pytest.raises(UserError, match=f"{INDEX_NAME}: missing"):
        TokenShards.open(tmp_path)
    (tmp_path / "curated" / "documents").mkdir(parents=True)
    with pytest.raises(UserError) as err:  # a document tree given as --data
        TokenShards.open(tmp_path / "curated")
    assert "tokenize it first" in err.value.hint
    _write_shards(tmp_path / "t", stream, SHARD_SIZES)
    index = json.loads((tmp_path / "t" / INDEX_NAME).read_text())
    index["splits"]["train"]["shards"][2]["n_tokens"] += 1
    (tmp_path / "t" / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(UserError, match=r"train-00002\.bin: 500 bytes.*251 tokens"):
        TokenShards.open(tmp_path / "t")
    index["splits"]["train"]["shards"][2]["n_tokens"] -= 1
    index["splits"]["train"]["shards"][4]["sha256"] = "0" * 64
    (tmp_path / "t" / INDEX_NAME).write_text(json.dumps(index))
    assert TokenShards.open(tmp_path / "t").n_tokens == N_TOKENS  # sizes only, unless asked
    with pytest.raises(UserError, match=r"train-00004\.bin: sha256"):
        TokenShards.open(tmp_path / "t", verify=True)
