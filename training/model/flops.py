"""Parameter and FLOP counts, and model FLOP utilization.

Convention (stated wherever MFU is printed): training FLOPs per token = 6 x non-embedding parameters
+ causal attention. Non-embedding parameters are all parameters except the input embedding table;
the untied output head is a matmul and counts. Causal attention adds, per layer and token,
3 (fwd + bwd) x 2 x (T/2) x H x (d_qk + d_v): the QK^T and PV products over the causal half, which
for d_qk = d_v = d/H is the familiar 6 * d * T (= 12 * L * d * T^2 / 2 per sequence).
In a mixture-of-experts model a token runs K of the E experts, so expert weights count K/E of
their size (the active parameters); the router counts whole.
"""

from __future__ import annotations

from torch import nn

from redpajama.training.model.config import ModelConfig

H200_BF16_DENSE_PEAK = 989e12


def non_embedding_parameters(model: nn.Module) -> int:
    """Active non-embedding parameters per token (expert weights scaled by K/E)."""
    config = model.config
    total = 0.0
    for name, p in model.named_parameters():
        if name == "embed.weight":
            continue
        expert = config.moe_experts and name.endswith(("mlp.w_gate_up.weight", "mlp.w_down.weight"))
        total += p.numel() * (config.moe_top_k / config.moe_experts if expert else 1)
    return int(total)


def attention_flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Softmax-attention layers only: a hybrid's Mamba-2 layers count through their parameters."""
    d_qk = d_v = config.head_dim
    layers = sum(config.mixer(i) == "A" for i in range(config.n_layers))
    return 3 * 2 * (seq_len / 2) * config.n_heads * (d_qk + d_v) * layers


def training_flops_per_token(model: nn.Module, seq_len: int) -> float:
    return 6 * non_embedding_parameters(model) + attention_flops_per_token(model.config, seq_len)


def mfu(tokens_per_second: float, flops_per_token: float, peak: float = H200_BF16_DENSE_PEAK) -> float:
    return tokens_per_second * flops_per_token / peak
