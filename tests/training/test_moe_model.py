"""The MoE model: the layer against the naive MoE, init, the load-balancing loss, training on real text."""

from __future__ import annotations

import math

import pytest
import torch
from training_helpers import first_and_last_loss, tiny_run

from redpajama.errors import UserError
from redpajama.kernels._testing import rel_rms, unit_randn
from redpajama.kernels.moe import naive
from redpajama.training.model import Transformer, model_config
from redpajama.training.model.moe import MoE, load_balancing_loss
from redpajama.training.trainer.loop import train

TINY_MOE = dict(moe_experts=8, moe_top_k=2, moe_hidden=64, moe_tile=4)


def _unit_weights(layer: MoE, seed: int) -> None:
    """Unit-scale weights: the 0.02 init would hide errors in the comparison."""
    with torch.no_grad():
        for i, p in enumerate(layer.parameters()):
            p.copy_(unit_randn(*p.shape, seed=seed + i))


def test_layer_equals_naive_moe_forward_and_backward():
    cfg = model_config("tiny", **TINY_MOE)
    layer = MoE(cfg)
    _unit_weights(layer, seed=1)
    x = unit_randn(2, 63, cfg.d_model, seed=10)  # (B, T, d): awkward T, flattened inside
    d_out = unit_randn(2, 63, cfg.d_model, seed=11)

    xa = x.clone().requires_grad_()
    out = layer(xa)
    out.backward(d_out)

    router_w, w1, w2 = (
        p.detach().clone().requires_grad_() for p in (layer.router.weight, layer.w1, layer.w2)
    )
    xb = x.clone().requires_grad_()
    ref = naive.moe_naive(xb.reshape(-1, cfg.d_model), router_w, w1, w2, cfg.moe_top_k).reshape(x.shape)
    ref.backward(d_out)

    assert out.shape == x.shape
    assert rel_rms(ref, out) < 1e-6
    assert rel_rms(xb.grad, xa.grad) < 1e-6
    for ref_param, param in ((router_w, layer.router.weight), (w1, layer.w1), (w2, layer.w2)):
        assert rel_rms(ref_param.grad, param.grad) < 1e-6


def test_init_follows_the_dense_mlp_by_name():
    cfg = model_config("tiny", **TINY_MOE, n_layers=8)
    model = Transformer(cfg)
    params = dict(model.named_parameters())
    std = cfg.init_std
    assert params["blocks.0.mlp.w_down.weight"].shape == (8, 64, cfg.d_model)
    assert params["blocks.0.mlp.w_gate_up.weight"].shape == (8, cfg.d_model, 128)
    expected = {
        "mlp.router.weight": std,
        "mlp.w_gate_up.weight": std,
        "mlp.w_down.weight": std / math.sqrt(2 * cfg.n_layers),  # the residual-output scaling
    }
    for suffix, want in expected.items():
        # All layers together: >= 4096 samples put the std estimate within ~1.1% (1 sigma).
        values = torch.cat([p.flatten() for name, p in params.items() if name.endswith(suffix)])
        assert values.std().item() == pytest.approx(want, rel=0.05), suffix


def test_aux_loss_is_one_under_a_uniform_router():
    layer = MoE(model_config("tiny", **TINY_MOE))
    _unit_weights(layer, seed=2)
    with torch.no_grad():
        layer.router.weight.zero_()  # every token: equal logits, uniform probabilities
    layer(unit_randn(3, 17, 64, seed=3))
    assert layer.aux_loss.item() == pytest.approx(1.0, abs=1e-6)


def test_aux_loss_matches_the_switch_formula_and_punishes_imbalance():
    e = 8
    layer = MoE(model_config("tiny", **TINY_MOE))
    _unit_weights(layer, seed=4)
    x = unit_randn(50, 64, seed=5).abs()  # positive inputs: a positive router row favours its expert
    with torch.no_grad():
        layer.router.weight.mul_(0.05)  # logits of std ~0.4 ...
        layer.router.weight[0] = 0.1  # ... and ~5 for expert 0: P_0 ~ 0.95, not saturated
    logits, routing = layer.route(x)
    probs = torch.softmax(logits.float(), dim=-1)
    experts = routing.expert_indices.tolist()
    expected = e * sum(experts.count(j) / len(experts) * probs[:, j].mean() for j in range(e))
    aux = load_balancing_loss(logits, routing)
    assert aux.item() == pytest.approx(expected.item(), rel=1e-6)
    # Expert 0 takes every token (f_0 = 1/2 with K = 2) and most of the probability: E * f_0 * P_0 ~ 4.
    assert aux.item() > 3
    aux.backward()
    # Descending the loss lowers expert 0's logits (its router row meets positive inputs).
    assert (layer.router.weight.grad[0] > 0).all()


def test_training_loss_adds_the_weighted_mean_aux_loss():
    cfg = model_config("tiny", **TINY_MOE, vocab_size=128, moe_aux_loss=0.5)
    torch.manual_seed(0)
    model = Transformer(cfg)
    ids = torch.randint(0, 128, (2, 31))
    targets = torch.randint(0, 128, (2, 31))
    train_loss = model(ids, targets)
    aux = [block.mlp.aux_loss for block in model.blocks]
    model.eval()
    with torch.no_grad():
        eval_loss = model(ids, targets)
    assert all(a is not None for a in aux) and all(block.mlp.aux_loss is None for block in model.blocks)
    assert train_loss.item() == pytest.approx(
        eval_loss.item() + 0.5 * torch.stack(aux).mean().item(), rel=1e-6
    )


def test_bad_moe_config_names_the_numbers():
    with pytest.raises(UserError, match="moe_top_k 9 must be in 1..moe_experts"):
        model_config("tiny", moe_experts=8, moe_top_k=9)
    with pytest.raises(UserError, match="sideways"):
        model_config("tiny", moe_experts=8, moe_rounding="sideways")


def test_tiny_moe_model_with_token_rounding_trains(shakespeare_tokens, tmp_path):
    overrides = dict(TINY_MOE, moe_rounding="up")
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=60, warmup_fraction=0.1, model_overrides=overrides)
    result = train(cfg, device="cpu")
    first, last = first_and_last_loss(tmp_path, 60)
    # As the dense tiny model (test_trainer): ~ln(2048) = 7.6 at init, about 6 nats after 60 steps.
    assert first > 7.3 and last < 6.3, (first, last)
    assert result.held_out_loss is not None and result.held_out_loss < 6.5


def test_moe_flops_count_active_experts_only():
    from redpajama.training.model import Transformer, model_config
    from redpajama.training.model.flops import non_embedding_parameters

    with torch.device("meta"):
        dense_part = Transformer(model_config("tiny"))
        moe = Transformer(model_config("tiny", moe_experts=8, moe_top_k=2, moe_hidden=32))
    c = moe.config
    experts = c.n_layers * c.moe_experts * (c.d_model * 2 * c.moe_hidden + c.moe_hidden * c.d_model)
    dense_mlp = c.n_layers * 3 * c.d_model * dense_part.config.mlp_hidden
    router = c.n_layers * c.moe_experts * c.d_model
    expected = non_embedding_parameters(dense_part) - dense_mlp + router + experts * 2 // 8
    assert non_embedding_parameters(moe) == expected
