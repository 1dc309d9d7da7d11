"""Ladder Residual: the model computes the paper's recurrence, is not the standard model, and trains."""

from __future__ import annotations

import pytest
import torch
from training_helpers import first_and_last_loss, tiny_run

from redpajama.training.model import Transformer, model_config
from redpajama.training.model.ladder import LadderTransformer
from redpajama.training.trainer import loop


def tiny(**overrides):
    base = dict(vocab_size=96, n_layers=3, kernels=False, loss="full")
    return model_config("tiny", **{**base, **overrides})


def ladder_by_definition(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """Logits from h_i = x_0 + sum_{j <= i-2} y_j over the 2L modules, output N(x_0 + sum_j y_j)."""
    t = ids.shape[1]
    cos, sin = model.rope_cos[:t], model.rope_sin[:t]
    modules = []
    for block in model.blocks:
        modules.append(lambda h, b=block: b.attn(b.attn_norm(h), cos, sin))
        modules.append(lambda h, b=block: b.mlp(b.mlp_norm(h)))
    x0 = model.embed(ids)
    outputs: list[torch.Tensor] = []
    for i, module in enumerate(modules, start=1):
        # Module i (1-based) sees the outputs of modules 1 .. i-2: outputs[: i - 2].
        h = x0 + sum(outputs[: max(i - 2, 0)], torch.zeros_like(x0))
        outputs.append(module(h))
    return model.head(model.norm(x0 + sum(outputs, torch.zeros_like(x0))))


def models(cfg, seed: int = 0) -> tuple[Transformer, LadderTransformer]:
    torch.manual_seed(seed)
    standard = Transformer(cfg).double()
    ladder = LadderTransformer(cfg).double()
    ladder.load_state_dict(standard.state_dict())
    return standard, ladder


@pytest.mark.parametrize("attention", ["gqa", "gta"])
def test_ladder_model_equals_its_recurrence_written_out(attention):
    cfg = tiny(attention=attention)
    _, ladder = models(cfg)
    ids = torch.randint(0, cfg.vocab_size, (3, 29), generator=torch.Generator().manual_seed(1))
    got, want = ladder(ids), ladder_by_definition(ladder, ids)
    assert got.shape == (3, 29, cfg.vocab_size)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_ladder_has_the_standard_parameters_but_computes_something_else():
    cfg = tiny()
    standard, ladder = models(cfg)
    assert [n for n, _ in standard.named_parameters()] == [n for n, _ in ladder.named_parameters()]
    ids = torch.randint(0, cfg.vocab_size, (2, 17), generator=torch.Generator().manual_seed(2))
    a, b = standard(ids), ladder(ids)
    rel = ((a - b).norm() / a.norm()).item()
    # A different architecture, not a reordering of the same sums: about 4% apart at init here.
    assert rel > 1e-2, rel
    # Even one block differs: standard's MLP reads x0 + attn, the ladder's reads x0 (rule for m_2).
    standard, ladder = models(tiny(n_layers=1))
    ids = ids[:, :5]
    assert not torch.allclose(standard(ids), ladder(ids), rtol=1e-9, atol=1e-12)


def test_ladder_is_causal():
    cfg = tiny()
    _, ladder = models(cfg)
    ids = torch.randint(0, cfg.vocab_size, (1, 20), generator=torch.Generator().manual_seed(3))
    changed = ids.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % cfg.vocab_size
    a, b = ladder(ids), ladder(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_ladder_gradients_reach_every_parameter():
    cfg = tiny()
    _, ladder = models(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(4))
    ladder(ids, ids).backward()
    for name, p in ladder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ladder_model_trains_on_real_text(shakespeare_tokens, tmp_path):
    overrides = {"residual": "ladder"}
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=60, warmup_fraction=0.1, model_overrides=overrides)
    assert isinstance(loop.build_model(cfg, vocab_size=2048), LadderTransformer)
    result = loop.train(cfg, device="cpu")
    first, last = first_and_last_loss(tmp_path, 60)
    # The same bar as the standard tiny model in test_trainer.py: ~ln(2048) = 7.6 down to about 6.
    assert first > 7.3 and last < 6.3, (first, last)
    assert result.held_out_loss is not None and result.held_out_loss < 6.5
