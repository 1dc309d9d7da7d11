"""The ablation model zoo: Llama-2-style decoders with GQA or GTA attention, sizes as typed configs."""

from redpajama.training.model.config import SIZES, ModelConfig, model_config
from redpajama.training.model.transformer import Transformer

__all__ = ["SIZES", "ModelConfig", "Transformer", "model_config"]
