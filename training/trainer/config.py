"""Everything a training run is decided by, as one typed config (saved next to its checkpoints)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from redpajama.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    data: Path  # a `redpajama tokenize` output folder
    out: Path  # checkpoints, metrics.jsonl, results.json
    model: str = "tiny"
    # ModelConfig fields to override, e.g. {"attention": "gta", "n_kv_heads": 4}.
    model_overrides: dict = field(default_factory=dict)
    seq_len: int = 256
    batch_size: int = 8  # sequences per rank per micro-step
    grad_accum: int = 1
    # Budget: steps, or tokens (rounded up to whole steps); exactly one is used, tokens first.
    max_steps: int = 100
    max_tokens: int | None = None
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.01  # the paper's linear warmup over the first 1% of steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 0
    compile: bool = False
    # "auto": bf16 autocast on CUDA, float32 on the CPU.
    precision: str = "auto"
    log_every: int = 10
    checkpoint_every: int = 0  # 0: only at the end
    eval_every: int = 0  # held-out loss every N steps; 0: only at the end
    eval_batches: int = 8
    # FSDP2 only: free each block's gathered parameters after its forward (memory) or keep them for
    # the backward (one all-gather per block per step instead of two; costs the bf16 parameters).
    fsdp_reshard_after_forward: bool = True

    def __post_init__(self) -> None:
        for name in ("seq_len", "batch_size", "grad_accum", "max_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise UserError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise UserError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def tokens_per_step(self, world_size: int) -> int:
        return self.seq_len * self.batch_size * self.grad_accum * world_size

    def total_steps(self, world_size: int) -> int:
        if self.max_tokens is None:
            return self.max_steps
        per_step = self.tokens_per_step(world_size)
        return max(1, -(-self.max_tokens // per_step))

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["data"], out["out"] = str(self.data), str(self.out)
        return out

    @classmethod
    def from_json(cls, raw: dict) -> TrainConfig:
        raw = dict(raw)
        raw["data"], raw["out"] = Path(raw["data"]), Path(raw["out"])
        return cls(**raw)
