"""The decoder: token embedding, pre-norm blocks (attention + SwiGLU), final RMSNorm, untied head."""

from __future__ import annotations

import math

import torch
from torch import nn

from redpajama.training.model.attention import rope_dim
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.hybrid import mixer_layer
from redpajama.training.model.layers import RMSNorm, SwiGLU, rope_tables
from redpajama.training.model.loss import chunked_linear_cross_entropy, full_cross_entropy
from redpajama.training.model.moe import MoE, auxiliary_loss


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        # The sequence mixer: attention, or Mamba-2 / log-linear Mamba-2 where config.mixer_pattern
        # says so (hybrid.py); kept under the name `attn` so every other module sees one layout.
        self.attn = mixer_layer(config, layer)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        # Mixture of experts when the config has experts; same attribute name, so norms and
        # parameter names stay those of the dense model.
        dense = not config.moe_experts
        self.mlp = SwiGLU(config.d_model, config.mlp_hidden, config.kernels) if dense else MoE(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """`model(input_ids)` gives logits (B, T, V); `model(input_ids, targets)` the mean loss."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        cos, sin = rope_tables(config.max_seq_len, rope_dim(config), config.rope_theta)
        # Not parameters and not saved: rebuilt from the config, moved with the module.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.config.init_std
        # GPT-2/OLMo-style: residual output projections shrink with depth so the stream's variance
        # does not grow with the number of blocks.
        out_std = std / math.sqrt(2 * self.config.n_layers)
        for name, param in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(param)
            elif name.endswith(("w_out.weight", "w_down.weight")):
                nn.init.normal_(param, std=out_std)
            else:
                nn.init.normal_(param, std=std)
        # SSM mixers (mamba2.py): dt bias, A, D and the conv get their own initialisation.
        for module in self.modules():
            if hasattr(module, "reset_ssm_parameters"):
                module.reset_ssm_parameters()
        cos, sin = rope_tables(self.config.max_seq_len, rope_dim(self.config), self.config.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        if t > self.config.max_seq_len:
            raise ValueError(f"sequence length {t} exceeds max_seq_len {self.config.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(input_ids)
        if torch.is_autocast_enabled(x.device.type):
            # A residual stream in the compute dtype, as Megatron keeps it: half the bytes of every
            # add and norm. Norm statistics are still taken in float32 (RMSNorm upcasts).
            x = x.to(torch.get_autocast_dtype(x.device.type))
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.norm(x)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_states(input_ids)
        if targets is None:
            return self.head(h)
        h, targets = h.flatten(0, 1), targets.flatten()
        if self.config.loss == "chunked":
            loss = chunked_linear_cross_entropy(h, self.head.weight, targets, use_kernel=self.config.kernels)
        else:
            loss = full_cross_entropy(h, self.head.weight, targets)
        # MoE: the layers stored this batch's load-balancing loss during a training forward (moe.py).
        aux = auxiliary_loss(self.blocks) if self.config.moe_experts and self.training else None
        return loss if aux is None else loss + self.config.moe_aux_loss * aux
