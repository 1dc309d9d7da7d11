"""The mixture-of-experts MLP: a router, E SwiGLU experts, and the Switch load-balancing loss.

Per token x (width d): logits = router(x) (E,); routing picks K experts per token (plain top-K or
SonicMoE token rounding, kernels/moe/routing.py); out = sum over its assignments of
score * expert_e(x), expert_e(x) = (silu(x W1[e][:, :n]) * (x W1[e][:, n:])) W2[e].

The load-balancing loss cannot come out of `forward` without changing every block's signature, so
each MoE layer stores it on `self.aux_loss` during a training forward (None in eval or when its
coefficient is 0) and `Transformer.forward` reads the layers' values right after the blocks ran,
i.e. for the same batch (`auxiliary_loss` below).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from redpajama.kernels.moe import naive
from redpajama.kernels.moe.routing import Routing, route_token_rounding
from redpajama.training.model.config import ModelConfig


class ExpertWeights(nn.Module):
    """E stacked matrices (E, fan_in, fan_out) as `.weight`.

    A module rather than a bare parameter so that the parameter is named `<name>.weight`:
    Transformer.reset_parameters initialises by name, and `w_down.weight` gets the residual-output
    scaling there exactly as the dense MLP's `w_down` does.
    """

    def __init__(self, experts: int, fan_in: int, fan_out: int, std: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, fan_in, fan_out))
        nn.init.normal_(self.weight, std=std)


class MoE(nn.Module):
    """x (..., d) -> (..., d). Parameters: router.weight (E, d), w_gate_up.weight = w1 (E, d, 2n)
    with [gate | up] columns, w_down.weight = w2 (E, n, d)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        e, d, n = config.moe_experts, config.d_model, config.moe_hidden
        self.router = nn.Linear(d, e, bias=False)
        nn.init.normal_(self.router.weight, std=config.init_std)
        # The dense MLP's init (Transformer.reset_parameters re-applies it by these names).
        self.w_gate_up = ExpertWeights(e, d, 2 * n, config.init_std)
        self.w_down = ExpertWeights(e, n, d, config.init_std / math.sqrt(2 * config.n_layers))
        self.aux_loss: torch.Tensor | None = None

    @property
    def w1(self) -> torch.Tensor:
        return self.w_gate_up.weight

    @property
    def w2(self) -> torch.Tensor:
        return self.w_down.weight

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, Routing]:
        """Router logits (T, E) and the routing for flat tokens x (T, d)."""
        logits = self.router(x)
        cfg = self.config
        return logits, route_token_rounding(logits, cfg.moe_top_k, tile=cfg.moe_tile, mode=cfg.moe_rounding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        logits, routing = self.route(flat)
        if self.config.moe_impl == "triton" and flat.is_cuda:
            # Imported here: the kernels are optional, and CPU runs never need Triton.
            from redpajama.kernels.moe.experts import moe_experts

            # Custom ops see no autocast: give the kernels one dtype (the activations').
            flat = flat.contiguous()
            w1, w2 = self.w1.to(flat.dtype), self.w2.to(flat.dtype)
            r = routing
            out = moe_experts(flat, w1, w2, r.token_indices, r.expert_offsets, r.scores)
        else:
            # The plain loop over experts: the CPU path and the reference the kernels match.
            r = routing
            out = naive.expert_outputs(flat, self.w1, self.w2, r.token_indices, r.expert_indices, r.scores)
        use_aux = self.training and self.config.moe_aux_loss > 0
        self.aux_loss = load_balancing_loss(logits, routing) if use_aux else None
        return out.reshape(x.shape).to(x.dtype)


def load_balancing_loss(logits: torch.Tensor, routing: Routing) -> torch.Tensor:
    """Switch Transformer's auxiliary loss E * sum_e f_e * P_e (a float32 scalar).

    f_e: the share of the dispatched assignments that go to expert e (after any rounding: the load
    the kernels actually carry), constant; P_e: the mean full-softmax router probability of e over
    the tokens, which carries the gradient. Equal to 1 whenever the router probabilities are
    uniform, and at its minimum 1 when both the load and the probabilities are uniform.
    """
    experts = logits.shape[-1]
    probs = torch.softmax(logits.float(), dim=-1).mean(dim=0)
    share = routing.expert_counts.float() / max(routing.num_assignments, 1)
    return experts * (share * probs).sum()


def auxiliary_loss(modules: nn.Module) -> torch.Tensor | None:
    """Mean of the load-balancing losses stored by the MoE layers under `modules` in their last
    forward; None when none stored one. The mean over layers (as Mixtral/OLMoE average over
    layers) keeps the coefficient's meaning independent of depth."""
    losses = [m.aux_loss for m in modules.modules() if isinstance(m, MoE) and m.aux_loss is not None]
    return torch.stack(losses).mean() if losses else None
