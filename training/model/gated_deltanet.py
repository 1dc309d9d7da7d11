"""Log-linear Gated DeltaNet sequence mixer (Yang et al. 2025; Guo et al. 2025), mixer letter "D".

Per token u (d_model), Gated DeltaNet's layer with the log-linear level weights added:
    q, k, v = SiLU(causal depthwise conv1d (kernel ssm_conv) of q_proj u, k_proj u, v_proj u)
    q, k L2-normalised per head, q scaled by 1/sqrt(head dim)
    beta = sigmoid(b_proj u);  g = -exp(A_log) softplus(a_proj u + dt_bias)   (log decay per head)
    lam = softplus(lam_proj u + lam_bias), (B, T, H, L), L = num_levels(max_seq_len)
    o = log-linear Gated DeltaNet(q, k, v, g, beta, lam)       (redpajama.kernels.log_linear_gdn)
    out = w_out(RMSNorm(o) * silu(gate_proj u))
with H = ssm heads of head dim d_inner / H for both keys and values. The state update is the gated
delta rule, S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, one state per Fenwick
bucket. lam_bias starts at softplus^-1(1): at init lam ~ 1 and the mixer is close to Gated
DeltaNet. Mixing runs our op with Triton bucket passes (`log_linear_gdn`) on CUDA when the head dim
is a power of two >= 16, else the chunked PyTorch path (`log_linear_gdn_chunked`); both in float32.
Simplifications against the reference layer: one norm over each head's output (as there), no
inference cache. Takes (x, cos, sin) like the other mixers (cos/sin unused).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from redpajama.kernels.log_linear import num_levels
from redpajama.kernels.log_linear_gdn import log_linear_gdn, log_linear_gdn_chunked
from redpajama.kernels.log_linear_gdn.log_linear_gdn import fits_kernels
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.layers import RMSNorm
from redpajama.training.model.mamba2 import init_decay, inverse_softplus


class LogLinearGatedDeltaNetMixer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.d_inner, self.n_heads = config.ssm_inner, config.ssm_n_heads
        self.head_dim = self.d_inner // self.n_heads
        self.chunk = config.ssm_chunk
        self.kernels = config.kernels
        self.levels = num_levels(config.max_seq_len)
        d, h = config.d_model, self.n_heads
        self.qkv_proj = nn.Linear(d, 3 * self.d_inner, bias=False)
        self.conv = nn.Conv1d(
            3 * self.d_inner,
            3 * self.d_inner,
            config.ssm_conv,
            groups=3 * self.d_inner,
            padding=config.ssm_conv - 1,
        )
        # beta, the decay's dt and the level weights: small per-head projections, one matmul.
        self.gates_proj = nn.Linear(d, 2 * h + h * self.levels, bias=False)
        self.dt_bias = nn.Parameter(torch.empty(h))
        self.A_log = nn.Parameter(torch.empty(h))
        self.lam_bias = nn.Parameter(torch.empty(h * self.levels))
        self.gate_proj = nn.Linear(d, self.d_inner, bias=False)
        self.norm = RMSNorm(self.head_dim, config.norm_eps)
        self.w_out = nn.Linear(self.d_inner, d, bias=False)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Decay and level-weight initialisation (Transformer.reset_parameters calls it after its pass)."""
        self.conv.reset_parameters()
        init_decay(self.dt_bias, self.A_log)
        self.lam_bias.copy_(inverse_softplus(torch.ones_like(self.lam_bias)))

    def mixer_inputs(self, u: torch.Tensor):
        """u (B, T, d_model) -> q, k, v (B, T, H, d) and g, beta (B, T, H), lam (B, T, H, L), float32."""
        b, t, _ = u.shape
        h, dh = self.n_heads, self.head_dim
        # Causal: padding k-1 on both sides, keep the first T outputs (token t sees t-k+1..t).
        qkv = F.silu(self.conv(self.qkv_proj(u).transpose(1, 2))[..., :t].transpose(1, 2))
        q, k, v = (x.reshape(b, t, h, dh).float() for x in qkv.split(self.d_inner, dim=-1))
        q = F.normalize(q, dim=-1) / math.sqrt(dh)
        k = F.normalize(k, dim=-1)
        beta, dt, lam = self.gates_proj(u).float().split([h, h, h * self.levels], dim=-1)
        g = -torch.exp(self.A_log.float()) * F.softplus(dt + self.dt_bias.float())
        lam = F.softplus(lam + self.lam_bias.float()).reshape(b, t, h, self.levels)
        return q, k, v, g, torch.sigmoid(beta), lam

    def forward(self, u: torch.Tensor, cos: torch.Tensor | None = None, sin: torch.Tensor | None = None):
        # ModelConfig already holds ssm_chunk to a power of two >= 16, as the op wants.
        if self.kernels and u.is_cuda and fits_kernels(self.head_dim):
            # Under bf16 autocast TF32 products are finer than the step's own rounding.
            prec = "tf32" if torch.is_autocast_enabled(u.device.type) else None
            o = log_linear_gdn(*self.mixer_inputs(u), chunk_size=self.chunk, dot_precision=prec)
        else:
            o = log_linear_gdn_chunked(*self.mixer_inputs(u), chunk_size=self.chunk)
        o = self.norm(o.to(u.dtype)).flatten(2)
        return self.w_out(o * F.silu(self.gate_proj(u)))
