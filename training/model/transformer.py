"""The decoder: token embedding, pre-norm blocks (attention + SwiGLU), final RMSNorm, untied head."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributed.fsdp import FSDPModule

from redpajama.kernels._inductor import register_inductor_fallbacks
from redpajama.training.model.attention import rope_dim
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.hybrid import mixer_layer
from redpajama.training.model.layers import RMSNorm, SwiGLU, rope_tables
from redpajama.training.model.loss import chunked_linear_cross_entropy, full_cross_entropy
from redpajama.training.model.moe import MoE, auxiliary_loss
from redpajama.training.model.residual import block_modules, embed_tokens, sequential_residual


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps, config.kernels and config.fused_norms)
        # The sequence mixer: attention, or Mamba-2 / log-linear Mamba-2 where config.mixer_pattern
        # says so (hybrid.py); kept under the name `attn` so every other module sees one layout.
        self.attn = mixer_layer(config, layer)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps, config.kernels and config.fused_norms)
        # Mixture of experts when the config has experts; same attribute name, so norms and
        # parameter names stay those of the dense model.
        dense = not config.moe_experts
        self.mlp = SwiGLU(config.d_model, config.mlp_hidden, config.kernels) if dense else MoE(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x, normed = self.mlp_norm.add_and_norm(x, self.attn(self.attn_norm(x), cos, sin))
        return x + self.mlp(normed)


class Transformer(nn.Module):
    """`model(input_ids)` gives logits (B, T, V); `model(input_ids, targets)` the mean loss."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps, config.kernels and config.fused_norms)
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

    def compile(self, *args, **kwargs) -> None:
        """nn.Module.compile: one graph for the whole model."""
        self._before_compile()
        super().compile(*args, **kwargs)

    def compile_blocks(self, *args, **kwargs) -> None:
        """Each block its own graph, as FSDP2 needs (its hooks sit between blocks; torchtitan does
        the same)."""
        self._before_compile()
        for block in self.blocks:
            block.compile(*args, **kwargs)

    def _before_compile(self) -> None:
        # With fused norms, Inductor is told about our ops first (kernels/_inductor.py).
        if self.config.kernels and self.config.fused_norms:
            register_inductor_fallbacks()

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x, cos, sin = embed_tokens(self, input_ids)
        if any(isinstance(block, FSDPModule) for block in self.blocks):
            # FSDP2 gathers a block's weights in hooks around the block's own forward: keep to it.
            for block in self.blocks:
                x = block(x, cos, sin)
            return self.norm(x)
        # Over modules, so each add joins the next norm across block boundaries (residual.py).
        return sequential_residual(x, block_modules(self.blocks, cos, sin), self.norm)

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
