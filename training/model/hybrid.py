"""Hybrid stacks: each block's sequence mixer follows `ModelConfig.mixer_pattern` (config.py).

"A" is the config's attention (GQA/GTA), "M" `Mamba2Mixer`, "L" `LogLinearMamba2Mixer` (mamba2.py),
"D" `LogLinearGatedDeltaNetMixer` (gated_deltanet.py);
the MLP (dense SwiGLU or MoE) and the pre-norm residual wiring are unchanged. The mixer keeps the
attribute name `attn` in `Block`, so parameter names, the ladder residual and norms stay as in the
all-attention model. Zoo sizes: `hybrid-20m` ("MMA" -> MMAMMA), `loglinear-20m` ("LLA") and
`loglinear-gdn-20m` ("DDA").
Not supported with SSM mixers: tensor parallelism (it shards attention heads only).
"""

from __future__ import annotations

from torch import nn

from redpajama.training.model.attention import attention_layer
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.gated_deltanet import LogLinearGatedDeltaNetMixer
from redpajama.training.model.mamba2 import LogLinearMamba2Mixer, Mamba2Mixer


def mixer_layer(config: ModelConfig, layer: int) -> nn.Module:
    """Layer `layer`'s sequence mixer; every one is called as mixer(x, cos, sin)."""
    kind = config.mixer(layer)
    if kind == "M":
        return Mamba2Mixer(config)
    if kind == "L":
        return LogLinearMamba2Mixer(config)
    if kind == "D":
        return LogLinearGatedDeltaNetMixer(config)
    return attention_layer(config)


def layer_kinds(config: ModelConfig) -> str:
    """The mixer letter of every layer, e.g. "MMAMMA" for hybrid-20m."""
    return "".join(config.mixer(i) for i in range(config.n_layers))
