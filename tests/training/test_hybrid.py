"""Hybrid Mamba-2 / log-linear Mamba-2 / log-linear Gated DeltaNet / attention stacks: the mixers
against their recurrences, causality, the pattern's validation, and training on real text."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from training_helpers import first_and_last_loss, tiny_run

from redpajama.errors import UserError
from redpajama.kernels.log_linear import num_levels
from redpajama.kernels.log_linear_gdn import log_linear_gdn_recurrent
from redpajama.kernels.ssd.naive import ssd_recurrent
from redpajama.training.model import Transformer, model_config
from redpajama.training.model.attention import GroupedQueryAttention
from redpajama.training.model.gated_deltanet import LogLinearGatedDeltaNetMixer
from redpajama.training.model.hybrid import layer_kinds
from redpajama.training.model.mamba2 import LogLinearMamba2Mixer, Mamba2Mixer
from redpajama.training.trainer.loop import train


def tiny(**overrides):
    base = dict(mixer_pattern="MA", ssm_state=16, ssm_heads=4, ssm_groups=2, ssm_chunk=16, max_seq_len=64)
    base.update(overrides)
    return model_config("tiny", **base)


def test_mamba2_mixer_equals_the_recurrence_on_its_projected_inputs():
    torch.manual_seed(0)
    mixer = Mamba2Mixer(tiny())
    u = torch.randn(2, 37, 64)  # 37: not a multiple of the chunk (16), so padding is exercised
    z, args = mixer.ssd_inputs(u)
    x, dt, a, bm, cm, d = args
    assert x.shape == (2, 37, 4, 32) and bm.shape == (2, 37, 2, 16) and dt.shape == (2, 37, 4)
    assert (dt > 0).all() and (a < 0).all()
    y = mixer.scan(*args)
    ref = ssd_recurrent(*(v.double() for v in args))
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-5)
    # The whole mixer is that SSD output through the gate, the norm and the out projection.
    expected = mixer.w_out(mixer.norm(ref.float().flatten(2) * F.silu(z)))
    torch.testing.assert_close(mixer(u), expected, rtol=1e-4, atol=1e-5)


def test_mamba2_inputs_are_causal_through_the_conv():
    torch.manual_seed(0)
    mixer = Mamba2Mixer(tiny())
    u = torch.randn(1, 20, 64)
    u2 = u.clone()
    u2[:, 12:] = torch.randn(1, 8, 64)
    _, a1 = mixer.ssd_inputs(u)
    _, a2 = mixer.ssd_inputs(u2)
    torch.testing.assert_close(a1[0][:, :12], a2[0][:, :12])
    assert not torch.allclose(a1[0][:, 12], a2[0][:, 12])


def test_log_linear_mixer_starts_as_mamba2_and_its_level_weights_matter():
    torch.manual_seed(0)
    cfg = tiny(mixer_pattern="L")
    mixer = LogLinearMamba2Mixer(cfg)
    assert mixer.levels == num_levels(64)
    u = torch.randn(2, 23, 64)
    lam = mixer.level_weights(u)
    assert lam.shape == (2, 23, 4, num_levels(64)) and (lam > 0).all()
    # With lam == 1 it is exactly Mamba-2 (same parameters): zero the projection.
    with torch.no_grad():
        mixer.lam_proj.weight.zero_()
    torch.testing.assert_close(mixer.level_weights(u), torch.ones_like(lam))
    torch.testing.assert_close(mixer(u), Mamba2Mixer.forward(mixer, u), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        mixer.lam_proj.weight.normal_(std=0.5)
    assert not torch.allclose(mixer(u), Mamba2Mixer.forward(mixer, u), rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton mixers run on CUDA only")
@pytest.mark.parametrize("mixer_cls, pattern", [(Mamba2Mixer, "M"), (LogLinearMamba2Mixer, "L")])
def test_triton_mixers_match_the_chunked_path_on_cuda(mixer_cls, pattern):
    # On CUDA the mixers run our Triton ops; built with kernels=False, the float32 chunked path. Same
    # parameters, T = 200 (13 chunks of 16: four chunk-levels), outputs and every gradient agree.
    torch.manual_seed(0)
    fast = mixer_cls(tiny(mixer_pattern=pattern, max_seq_len=256)).cuda()
    slow = mixer_cls(tiny(mixer_pattern=pattern, max_seq_len=256, kernels=False)).cuda()
    slow.load_state_dict(fast.state_dict())
    u = torch.randn(2, 200, 64, device="cuda")
    outs = []
    for mixer in (fast, slow):
        y = mixer(u)
        y.square().mean().backward()
        outs.append((y.detach(), [p.grad.clone() for p in mixer.parameters()]))
    (y_fast, g_fast), (y_slow, g_slow) = outs
    torch.testing.assert_close(y_fast, y_slow, rtol=1e-3, atol=1e-4)
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-3, atol=1e-4)


def test_gated_deltanet_mixer_equals_the_recurrence_on_its_projected_inputs():
    torch.manual_seed(0)
    mixer = LogLinearGatedDeltaNetMixer(tiny(mixer_pattern="D"))
    assert mixer.levels == num_levels(64)
    u = torch.randn(2, 37, 64)  # not a multiple of the chunk (16)
    q, k, v, g, beta, lam = mixer.mixer_inputs(u)
    assert q.shape == (2, 37, 4, 32) and lam.shape == (2, 37, 4, num_levels(64))
    assert (g < 0).all() and ((beta > 0) & (beta < 1)).all() and (lam > 0).all()
    torch.testing.assert_close(k.norm(dim=-1), torch.ones(2, 37, 4))
    ref = log_linear_gdn_recurrent(*(x.double() for x in (q, k, v, g, beta, lam))).float()
    expected = mixer.w_out(mixer.norm(ref).flatten(2) * F.silu(mixer.gate_proj(u)))
    torch.testing.assert_close(mixer(u), expected, rtol=1e-4, atol=1e-5)


def test_gated_deltanet_inputs_are_causal_through_the_conv():
    torch.manual_seed(0)
    mixer = LogLinearGatedDeltaNetMixer(tiny(mixer_pattern="D"))
    u = torch.randn(1, 20, 64)
    u2 = u.clone()
    u2[:, 12:] = torch.randn(1, 8, 64)
    a1, a2 = mixer.mixer_inputs(u), mixer.mixer_inputs(u2)
    for x1, x2 in zip(a1, a2, strict=True):
        torch.testing.assert_close(x1[:, :12], x2[:, :12])
    assert not torch.allclose(a1[2][:, 12], a2[2][:, 12])


def test_blocks_follow_the_pattern_and_ssm_init_survives_reset():
    cfg = model_config("tiny", n_layers=4, mixer_pattern="ML", ssm_state=16, max_seq_len=64)
    model = Transformer(cfg)
    assert layer_kinds(cfg) == "MLML"
    kinds = [type(b.attn) for b in model.blocks]
    assert kinds == [Mamba2Mixer, LogLinearMamba2Mixer, Mamba2Mixer, LogLinearMamba2Mixer]
    mixer = model.blocks[0].attn
    assert torch.equal(mixer.D, torch.ones_like(mixer.D))
    assert (torch.exp(mixer.A_log) >= 1).all() and (torch.exp(mixer.A_log) <= 16).all()
    dt = F.softplus(mixer.dt_bias)
    assert (dt >= 1e-3 * 0.999).all() and (dt <= 0.1 * 1.001).all()
    assert layer_kinds(model_config("hybrid-20m")) == "MMAMMA"
    assert layer_kinds(model_config("loglinear-20m")) == "LLALLA"
    assert layer_kinds(model_config("loglinear-gdn-20m")) == "DDADDA"
    gdn = (
        Transformer(model_config("tiny", n_layers=2, mixer_pattern="DA", ssm_state=16, max_seq_len=64))
        .blocks[0]
        .attn
    )
    assert isinstance(gdn, LogLinearGatedDeltaNetMixer)
    assert (torch.exp(gdn.A_log) >= 1).all() and (F.softplus(gdn.lam_bias) - 1).abs().max() < 1e-5
    assert type(Transformer(model_config("tiny")).blocks[0].attn) is GroupedQueryAttention


@pytest.mark.parametrize("pattern", ["MA", "LA", "L", "DA"])
def test_hybrid_model_is_causal(pattern):
    torch.manual_seed(0)
    model = Transformer(tiny(mixer_pattern=pattern, vocab_size=128)).eval()
    ids = torch.randint(0, 128, (2, 40))
    changed = ids.clone()
    changed[:, 25:] = torch.randint(0, 128, (2, 15))
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mixer_pattern": "MX"}, "'X'"),
        ({"mixer_pattern": "MMA"}, "not a multiple of len"),
        ({"mixer_pattern": "M", "ssm_heads": 3}, "not a multiple of ssm_heads"),
        ({"mixer_pattern": "M", "ssm_heads": 4, "ssm_groups": 3}, "not a multiple of ssm_groups"),
        ({"mixer_pattern": "M", "ssm_chunk": 24}, "power of two"),
        ({"mixer_pattern": "L", "ssm_state": 0}, "must be positive"),
        ({"mixer_pattern": "D", "ssm_heads": 5}, "not a multiple of ssm_heads"),
    ],
)
def test_pattern_validation(overrides, message):
    with pytest.raises(UserError, match=message):
        model_config("tiny", **overrides)
    # The same SSM fields are not checked when the pattern has no SSM layer.
    model_config("tiny", mixer_pattern="AA", ssm_heads=3, ssm_chunk=24)


@pytest.mark.parametrize("pattern", ["MA", "LA", "DA"])
def test_tiny_hybrid_trains_on_real_text(shakespeare_tokens, tmp_path, pattern):
    overrides = {"mixer_pattern": pattern, "ssm_state": 16, "ssm_chunk": 16}
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=60, warmup_fraction=0.1, model_overrides=overrides)
    train(cfg, device="cpu")
    first, last = first_and_last_loss(tmp_path, 60)
    assert first > 7.3 and last < 6.5, (first, last)


def test_hybrid_flops_count_attention_layers_only():
    from redpajama.training.model.flops import attention_flops_per_token

    dense = model_config("tiny")
    hybrid = model_config("tiny", mixer_pattern="MA")
    assert attention_flops_per_token(hybrid, 64) * 2 == attention_flops_per_token(dense, 64)


def test_tensor_parallel_refuses_ssm_layers():
    from redpajama.training.model.tensor_parallel import check_splittable

    with pytest.raises(UserError, match="attention blocks only"):
        check_splittable(model_config("tiny", mixer_pattern="MA"), 2)
