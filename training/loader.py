"""Training batches from token shards: shuffled fixed-length windows, split across ranks, resumable.

The stream is cut into windows `[i*T, i*T + T + 1)` (token_shards.py); inputs are a window's first
T tokens, targets its last T. Windows do not respect document boundaries (EOS marks them, as in
GPT-2/nanoGPT packing).

Epoch e visits the windows in `numpy.random.default_rng([seed, epoch]).permutation(n)`. Global batch
b of the epoch is `perm[b*B*W : (b+1)*B*W]` and rank r reads its contiguous `B` of them, so the
union over ranks equals the batch of B*W a single process reads (the FSDP parity test relies on
this), and the state a resume needs is just (epoch, global batch within the epoch). An incomplete
last global batch is dropped: every step sees the same number of tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from redpajama.errors import UserError
from redpajama.training.token_shards import TokenShards

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, targets), int64, (batch_size, seq_len)


def _as_batch(windows: np.ndarray) -> Batch:
    tokens = torch.from_numpy(windows)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def _read(shards: TokenShards, indices: np.ndarray, seq_len: int) -> np.ndarray:
    return np.stack([shards.window(int(i), seq_len) for i in indices])


class SequenceLoader:
    """Endless shuffled batches of one rank; `next(loader)` -> (inputs, targets)."""

    def __init__(
        self,
        shards: TokenShards,
        seq_len: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.shards, self.seq_len, self.batch_size, self.seed = shards, seq_len, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.global_batch = batch_size * world_size
        self.batches_per_epoch = shards.sequences(seq_len) // self.global_batch
        if self.batches_per_epoch == 0:
            raise UserError(
                f"{shards.folder}: the {shards.split} split has {shards.n_tokens:,} tokens, fewer than one "
                f"global batch of {self.global_batch} x {seq_len + 1}",
                "tokenize more documents, or lower the batch size or sequence length",
            )
        self.epoch = 0
        self.step = 0  # global batches already read in this epoch
        self._permutation_epoch = -1
        self._permutation = np.empty(0, dtype=np.int64)

    def permutation(self, epoch: int) -> np.ndarray:
        """The window order of `epoch` (the same on every rank)."""
        if epoch != self._permutation_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._permutation = rng.permutation(self.shards.sequences(self.seq_len))
            self._permutation_epoch = epoch
        return self._permutation

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        return self.next()

    def next(self) -> Batch:
        if self.step >= self.batches_per_epoch:
            self.epoch, self.step = self.epoch + 1, 0
        first = self.step * self.global_batch + self.rank * self.batch_size
        indices = self.permutation(self.epoch)[first : first + self.batch_size]
        self.step += 1
        return _as_batch(_read(self.shards, indices, self.seq_len))

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            # Checked on load: the position means the same batches only under the same cut.
            "seed": self.seed,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        for key in ("seed", "seq_len", "global_batch"):
            if state[key] != mine[key]:
                raise ValueError(f"loader state has {key}={state[key]}, this loader {key}={mine[key]}")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])


def held_out_batches(
    shards: TokenShards,
    seq_len: int,
    batch_size: int,
    max_batches: int | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """The first windows of `shards` in stream order (no shuffle), `batch_size` at a time, for eval.

    Stops after `max_batches` (None: all windows). The last batch may be smaller unless `drop_last`.
    """
    total = shards.sequences(seq_len)
    if max_batches is not None:
        total = min(total, max_batches * batch_size)
    for first in range(0, total, batch_size):
        indices = np.arange(first, min(first + batch_size, total))
        if drop_last and len(indices) < batch_size:
            return
        yield _as_batch(_read(shards, indices, seq_len))
