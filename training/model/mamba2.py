"""Mamba-2 sequence mixers (Dao & Gu 2024) and the log-linear variant (Guo et al. 2025).

`Mamba2Mixer`, per token u (d_model), simplified from the reference `Mamba2` module but the same math:
    in_proj: u -> [z (d_inner), x (d_inner), B (G*N), C (G*N), dt (H)]
    [x, B, C] <- SiLU(causal depthwise conv1d (kernel ssm_conv) over time)
    dt <- softplus(dt + dt_bias);  A = -exp(A_log) per head
    y = SSD(x, dt, A, B, C) + D x       (`redpajama.kernels.ssd`: Triton forward and backward on CUDA,
                                         the chunked PyTorch path on the CPU; see `scan`)
    out = w_out(RMSNorm(y * silu(z)))   (gated RMSNorm, norm after the gate, one group over d_inner)
with d_inner = ssm_expand * d_model, H heads of P = d_inner / H channels, N = ssm_state.
Simplifications: no bias in the projections, the gated norm normalises all of d_inner at once (the
reference normalises per B/C group), no inference cache.

`LogLinearMamba2Mixer` adds per-level weights lam = softplus(lam_proj(u) + lam_bias), (B, T, H, L)
with L = num_levels(max_seq_len), and mixes with `redpajama.kernels.log_linear` in chunks of
`ssm_chunk` tokens: our Triton forward and backward on CUDA, the chunked PyTorch path in float32
elsewhere (see `LogLinearMamba2Mixer.mix`).
lam_bias starts at softplus^-1(1), so at init lam ~ 1 and the mixer is close to Mamba-2.

Both take (x, cos, sin) like the attention layers (cos/sin unused) so a block can hold either.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from redpajama.kernels.log_linear import log_linear, log_linear_chunked, num_levels
from redpajama.kernels.ssd import ssd
from redpajama.kernels.ssd.chunked import ssd_chunked
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.layers import RMSNorm

# dt at init, log-uniform in this range (the reference's dt_min / dt_max), and A in [1, 16].
DT_RANGE = (1e-3, 1e-1)
A_RANGE = (1.0, 16.0)


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


@torch.no_grad()
def init_decay(dt_bias: nn.Parameter, A_log: nn.Parameter) -> None:
    """Mamba-2's decay initialisation, per head: softplus(dt_bias) log-uniform in DT_RANGE, and
    -exp(A_log) uniform in -A_RANGE."""
    n = dt_bias.shape[0]
    lo, hi = DT_RANGE
    dt = torch.exp(torch.rand(n) * (math.log(hi) - math.log(lo)) + math.log(lo))
    dt_bias.copy_(inverse_softplus(dt))
    A_log.copy_(torch.log(torch.empty(n).uniform_(*A_RANGE)))


class Mamba2Mixer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.d_inner, self.n_heads = config.ssm_inner, config.ssm_n_heads
        self.head_dim = self.d_inner // self.n_heads
        self.groups, self.state = config.ssm_groups, config.ssm_state
        self.chunk = config.ssm_chunk
        self.kernels = config.kernels
        conv_dim = self.d_inner + 2 * self.groups * self.state
        self.in_proj = nn.Linear(config.d_model, self.d_inner + conv_dim + self.n_heads, bias=False)
        self.conv = nn.Conv1d(
            conv_dim, conv_dim, config.ssm_conv, groups=conv_dim, padding=config.ssm_conv - 1
        )
        self.dt_bias = nn.Parameter(torch.empty(self.n_heads))
        self.A_log = nn.Parameter(torch.empty(self.n_heads))
        self.D = nn.Parameter(torch.empty(self.n_heads))
        self.norm = RMSNorm(self.d_inner, config.norm_eps)
        self.w_out = nn.Linear(self.d_inner, config.d_model, bias=False)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """The SSM-specific initialisation (Transformer.reset_parameters calls it after its generic pass)."""
        self.conv.reset_parameters()
        init_decay(self.dt_bias, self.A_log)
        self.D.fill_(1.0)

    def ssd_inputs(self, u: torch.Tensor):
        """u (B, T, d_model) -> z (B, T, d_inner) and the SSD arguments x (B, T, H, P), dt (B, T, H),
        A (H,), Bm, Cm (B, T, G, N), D (H,); dt, A and D in float32."""
        b, t, _ = u.shape
        gn = self.groups * self.state
        z, xbc, dt = self.in_proj(u).split([self.d_inner, self.d_inner + 2 * gn, self.n_heads], dim=-1)
        # Causal: padding k-1 on both sides, keep the first T outputs (token t sees t-k+1..t).
        xbc = F.silu(self.conv(xbc.transpose(1, 2))[..., :t].transpose(1, 2))
        x, bm, cm = xbc.split([self.d_inner, gn, gn], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        a = -torch.exp(self.A_log.float())
        x = x.reshape(b, t, self.n_heads, self.head_dim)
        bm, cm = bm.reshape(b, t, self.groups, self.state), cm.reshape(b, t, self.groups, self.state)
        return z, (x, dt, a, bm, cm, self.D.float())

    def scan(self, x, dt, a, bm, cm, d) -> torch.Tensor:
        """The SSD: our Triton forward and backward on CUDA, the chunked PyTorch path in float32
        elsewhere (the CPU, and models built with kernels=False). On an H200 at REFERENCE LL-A's
        shape (B=4, T=8192, H=24, P=64, N=128; benchmarks/sequence_mixers.py) the Triton op takes
        0.86 / 5.4 ms forward / forward+backward against 3.4 / 11.0 for the compiled chunked path."""
        if self.kernels and x.is_cuda:
            return ssd(x, dt, a, bm, cm, d, chunk_size=self.chunk)
        y = ssd_chunked(x.float(), dt, a, bm.float(), cm.float(), d, chunk_size=self.chunk)
        return y.to(x.dtype)

    def output(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y (B, T, H, P), z (B, T, d_inner) -> (B, T, d_model): gated RMSNorm and the out projection."""
        y = y.flatten(2).to(z.dtype)
        return self.w_out(self.norm(y * F.silu(z)))

    def forward(self, u: torch.Tensor, cos: torch.Tensor | None = None, sin: torch.Tensor | None = None):
        z, args = self.ssd_inputs(u)
        return self.output(self.scan(*args), z)


class LogLinearMamba2Mixer(Mamba2Mixer):
    def __init__(self, config: ModelConfig) -> None:
        self.levels = num_levels(config.max_seq_len)
        super().__init__(config)
        self.lam_proj = nn.Linear(config.d_model, self.n_heads * self.levels, bias=False)
        self.lam_bias = nn.Parameter(torch.empty(self.n_heads * self.levels))
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        super().reset_ssm_parameters()
        if hasattr(self, "lam_bias"):
            self.lam_bias.copy_(inverse_softplus(torch.ones_like(self.lam_bias)))

    def level_weights(self, u: torch.Tensor) -> torch.Tensor:
        """lam (B, T, H, L) >= 0, float32."""
        b, t, _ = u.shape
        lam = F.softplus(self.lam_proj(u).float() + self.lam_bias.float())
        return lam.reshape(b, t, self.n_heads, self.levels)

    def mix(self, x, dt, a, bm, cm, d, lam) -> torch.Tensor:
        """Log-linear Mamba-2: our Triton op on CUDA, the chunked PyTorch path in float32 elsewhere (the
        CPU, and models built with kernels=False). On an H200 at REFERENCE LL-A's shape
        (benchmarks/sequence_mixers.py) the Triton op takes 1.9 / 8.7 ms forward / forward+backward
        against 11.2 / 26.9 for the compiled chunked path."""
        if self.kernels and x.is_cuda:
            return log_linear(x, dt, a, bm, cm, d, lam, chunk_size=self.chunk)
        y = log_linear_chunked(x.float(), dt, a, bm.float(), cm.float(), d, lam, chunk_size=self.chunk)
        return y.to(x.dtype)

    def forward(self, u: torch.Tensor, cos: torch.Tensor | None = None, sin: torch.Tensor | None = None):
        z, args = self.ssd_inputs(u)
        return self.output(self.mix(*args, self.level_weights(u)), z)
