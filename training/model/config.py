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
AttentionBackend = Literal["auto", "sdpa", "cudnn", "flash", "math", "triton"]
MoERounding = Literal["topk", "up", "down", "nearest"]
MoEImpl = Literal["naive", "triton"]
# Sequence mixers of a block (hybrid.py): attention, Mamba-2, log-linear Mamba-2.
MIXERS = ("A", "M", "L", "D")


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
    # With kernels, each residual add and the RMSNorm after it as one Triton op (kernels/rmsnorm),
    # the same kernels in the standard and the Ladder flow, whatever Inductor would pair: the
    # Ladder's step then comes within 1% of the standard one (1.006x; 1.011-1.021x with Inductor's
    # norms), and the standard 468m step is as fast either way (docs/benchmarks.md).
    fused_norms: bool = True
    # "ladder": each attention/MLP module reads the stream without the previous module's output
    # (ladder.py), so tensor-parallel all-reduces overlap the next module. Same parameters.
    residual: Literal["standard", "ladder"] = "standard"
    # --- Mixture of experts (moe.py). 0 experts: every block has the dense SwiGLU MLP. Otherwise
    # every block's MLP is `moe_experts` SwiGLU experts of hidden `moe_hidden`, `moe_top_k` per
    # token; `moe_rounding` (None = plain top-K) rounds each expert's load to a multiple of
    # `moe_tile` (SonicMoE token rounding); "triton" runs the experts with the grouped-GEMM kernels
    # on CUDA. `moe_aux_loss` weighs the Switch load-balancing loss in training (0 disables it).
    moe_experts: int = 0
    moe_top_k: int = 8
    moe_hidden: int = 256
    moe_rounding: MoERounding | None = None
    moe_tile: int = 128
    moe_impl: MoEImpl = "naive"
    moe_aux_loss: float = 0.01
    # --- Hybrid stacks (mamba2.py, hybrid.py). `mixer_pattern` picks each block's sequence mixer,
    # repeated over the layers (layer i uses pattern[i % len(pattern)]; n_layers must be a multiple
    # of its length): "A" attention, "M" Mamba-2, "L" log-linear Mamba-2, "D" log-linear Gated
    # DeltaNet (gated_deltanet.py); "" is all attention.
    # SSM mixers: inner width `ssm_expand` * d_model, `ssm_heads` heads (0: head dim 64), B/C of
    # `ssm_state` per group, `ssm_groups` groups, SSD chunks of `ssm_chunk` tokens.
    mixer_pattern: str = ""
    ssm_state: int = 64
    ssm_heads: int = 0
    ssm_groups: int = 1
    ssm_expand: int = 2
    ssm_chunk: int = 64
    ssm_conv: int = 4

    def __post_init__(self) -> None:
        self._check_moe()
        self._check_mixers()
        kv = self.kv_heads
        if self.d_model % self.n_heads:
            raise UserError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.n_heads % kv:
            raise UserError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {kv}")
        if self.head_dim % 2 or (self.attention == "gta" and self.head_dim % 4):
            raise UserError(f"head_dim {self.head_dim} must be even (a multiple of 4 for GTA)")

    def _check_moe(self) -> None:
        if not self.moe_experts:
            return
        if not 1 <= self.moe_top_k <= self.moe_experts:
            raise UserError(f"moe_top_k {self.moe_top_k} must be in 1..moe_experts ({self.moe_experts})")
        if self.moe_rounding not in (None, "topk", "up", "down", "nearest"):
            raise UserError(f"moe_rounding {self.moe_rounding!r} is not None, topk, up, down or nearest")
        if self.moe_impl not in ("naive", "triton"):
            raise UserError(f"moe_impl {self.moe_impl!r} is not naive or triton")
        if self.moe_tile < 1 or self.moe_hidden < 1 or self.moe_aux_loss < 0:
            raise UserError(
                f"moe_tile {self.moe_tile} and moe_hidden {self.moe_hidden} must be positive, "
                f"moe_aux_loss {self.moe_aux_loss} non-negative"
            )

    def _check_mixers(self) -> None:
        pattern = self.mixer_pattern
        bad = sorted(set(pattern) - set(MIXERS))
        if bad:
            raise UserError(f"mixer_pattern {pattern!r} has {''.join(bad)!r}; use A (attention), M, L, D")
        if pattern and self.n_layers % len(pattern):
            raise UserError(f"n_layers {self.n_layers} is not a multiple of len(mixer_pattern {pattern!r})")
        if not set(pattern) & {"M", "L", "D"}:
            return
        inner, heads = self.ssm_inner, self.ssm_n_heads
        if min(self.ssm_state, self.ssm_groups, self.ssm_expand, self.ssm_conv, self.ssm_chunk, heads) < 1:
            raise UserError(
                "ssm_state, ssm_groups, ssm_expand, ssm_conv, ssm_chunk and ssm heads must be positive"
            )
        if inner % heads:
            raise UserError(f"ssm inner width {inner} is not a multiple of ssm_heads {heads}")
        if heads % self.ssm_groups:
            raise UserError(f"ssm_heads {heads} is not a multiple of ssm_groups {self.ssm_groups}")
        if self.ssm_chunk < 16 or self.ssm_chunk & (self.ssm_chunk - 1):
            raise UserError(f"ssm_chunk must be a power of two >= 16, got {self.ssm_chunk}")

    def mixer(self, layer: int) -> str:
        """Layer `layer`'s mixer: "A" (attention), "M" (Mamba-2), "L" (log-linear Mamba-2) or "D"
        (log-linear Gated DeltaNet)."""
        return self.mixer_pattern[layer % len(self.mixer_pattern)] if self.mixer_pattern else "A"

    @property
    def ssm_inner(self) -> int:
        return self.ssm_expand * self.d_model

    @property
    def ssm_n_heads(self) -> int:
        return self.ssm_heads or max(self.ssm_inner // 64, 1)

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
    # Fine-grained MoE (many small experts, as SonicMoE/OLMoE): 64 experts of hidden 256, 8 per
    # token: 2048 expert hidden units per token (the dense MLP here has 1536); 25M expert parameters
    # per layer, 3M of them active per token.
    "moe-small": ModelConfig(
        n_layers=8, d_model=512, n_heads=8, max_seq_len=2048, moe_experts=64, moe_top_k=8, moe_hidden=256
    ),
    # Hybrids (hybrid.py), the 20m shape: Mamba-2 with attention every third layer ("MMAMMA"), and
    # log-linear Mamba-2 the same way. Inner width 768 = 12 SSM heads of 64, state 64.
    "hybrid-20m": ModelConfig(n_layers=6, d_model=384, n_heads=6, max_seq_len=1024, mixer_pattern="MMA"),
    "loglinear-20m": ModelConfig(n_layers=6, d_model=384, n_heads=6, max_seq_len=1024, mixer_pattern="LLA"),
    "loglinear-gdn-20m": ModelConfig(
        n_layers=6, d_model=384, n_heads=6, max_seq_len=1024, mixer_pattern="DDA"
    ),
}


def model_config(size: str, **overrides: object) -> ModelConfig:
    """The named size with `overrides` applied (e.g. attention="gta", n_kv_heads=4)."""
    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
    return SIZES[size].replace(**{k: v for k, v in overrides.items() if v is not None})
