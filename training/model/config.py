"""Model shapes as typed configs, one per named size.

Sizes follow RedPajama-V2's ablations (REFERENCE A.6.1): `468m` is 24 layers, hidden 1024, 16 heads,
`1.6b` the same depth at hidden 2048, both Llama-2 style with an MLP ratio of 4 (SwiGLU hidden =
8/3 * 4 * d / 4 rounded up to 256, as Llama sizes it so parameters match a 4x GELU MLP). Smaller
sizes exist for CPU smoke runs and quick GPU ablations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from redpajama.errors import UserError

AttentionKind = Literal["gqa", "gta"]
AttentionBackend = Literal["auto", "sdpa", "cudnn", "flash", "math"]


@dataclass(frozen=True)
class ModelConfig:
    n_layers: int
    d_model: int
    n_heads: int
    # Key/value heads (GQA) or tied KV states (GTA); n_heads means plain multi-head attention.
    n_kv_heads: int | None = None
    attention: AttentionKind = "gqa"
    vocab_size: int = 50304  # GPT-2's 50257 padded to a multiple of 128 for the matmul tiles
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    mlp_multiple_of: int = 256
    attention_backend: AttentionBackend = "auto"
    # "chunked" never materializes the (tokens x vocab) logits: see loss.py.
    loss: Literal["chunked", "full"] = "chunked"
    init_std: float = 0.02
    # On CUDA, this project's Triton kernels for SwiGLU, RoPE (fused QKV, GQA) and the loss chunks;
    # the PyTorch expressions elsewhere (and always on the CPU).
    kernels: bool = True

    def __post_init__(self) -> None:
        kv = self.kv_heads
        if self.d_model % self.n_heads:
            raise UserError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.n_heads % kv:
            raise UserError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {kv}")
        if self.head_dim % 2 or (self.attention == "gta" and self.head_dim % 4):
            raise UserError(f"head_dim {self.head_dim} must be even (a multiple of 4 for GTA)")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def mlp_hidden(self) -> int:
        hidden = int(2 * 4 * self.d_model / 3)
        m = self.mlp_multiple_of
        return m * ((hidden + m - 1) // m)

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)


SIZES: dict[str, ModelConfig] = {
    # CPU smoke runs and tests: a few seconds per hundred steps on one core.
    "tiny": ModelConfig(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, max_seq_len=256, mlp_multiple_of=32),
    "20m": ModelConfig(n_layers=6, d_model=384, n_heads=6, max_seq_len=1024),
    "124m": ModelConfig(n_layers=12, d_model=768, n_heads=12, max_seq_len=2048),
    "468m": ModelConfig(n_layers=24, d_model=1024, n_heads=16, max_seq_len=2048),
    "1.6b": ModelConfig(n_layers=24, d_model=2048, n_heads=16, max_seq_len=2048),
}


def model_config(size: str, **overrides: object) -> ModelConfig:
    """The named size with `overrides` applied (e.g. attention="gta", n_kv_heads=4)."""
    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
    return SIZES[size].replace(**{k: v for k, v in overrides.items() if v is not None})
