"""The model zoo against plain definitions: attention variants, RoPE, the chunked loss, the sizes."""

from __future__ import annotations

import pytest
import torch

from redpajama.errors import UserError
from redpajama.training.model import Transformer, model_config
from redpajama.training.model.attention import (
    GroupedQueryAttention,
    GroupedTiedAttention,
    causal_attention,
    naive_causal_attention,
)
from redpajama.training.model.flops import non_embedding_parameters, training_flops_per_token
from redpajama.training.model.layers import apply_rope, rope_tables
from redpajama.training.model.loss import chunked_linear_cross_entropy, full_cross_entropy


def rel_rms(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()


@pytest.mark.parametrize("t", [1, 7, 63])
@pytest.mark.parametrize("heads,groups", [(4, 4), (4, 2), (6, 1)])
def test_causal_attention_matches_the_definition(t, heads, groups):
    g = torch.Generator().manual_seed(t * 10 + heads + groups)
    q = torch.randn(2, t, heads, 16, generator=g, dtype=torch.float64)
    k = torch.randn(2, t, groups, 16, generator=g, dtype=torch.float64)
    v = torch.randn(2, t, groups, 8, generator=g, dtype=torch.float64)
    out = causal_attention(q, k, v, backend="math")
    assert rel_rms(out, naive_causal_attention(q, k, v)) < 1e-10


@pytest.mark.parametrize("heads,groups", [(4, 4), (4, 2)])
def test_triton_attention_backend_matches_the_definition(heads, groups):
    # Our flash kernel (the CPU interpreter, float32) behind the model's backend switch, gradients too.
    g = torch.Generator().manual_seed(heads + groups)
    q = torch.randn(2, 37, heads, 16, generator=g, requires_grad=True)
    k = torch.randn(2, 37, groups, 16, generator=g, requires_grad=True)
    v = torch.randn(2, 37, groups, 16, generator=g, requires_grad=True)
    d_out = torch.randn(2, 37, heads, 16, generator=g)
    out = causal_attention(q, k, v, backend="triton")
    grads = torch.autograd.grad(out, (q, k, v), d_out)
    ref = naive_causal_attention(q, k, v)
    ref_grads = torch.autograd.grad(ref, (q, k, v), d_out)
    assert rel_rms(out, ref) < 1e-5
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert rel_rms(grad, ref_grad) < 1e-5


def test_naive_attention_is_causal():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 9, 2, 4, generator=g, dtype=torch.float64) for _ in range(3))
    out = naive_causal_attention(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, 5:], v2[:, 5:] = torch.randn_like(k2[:, 5:]), torch.randn_like(v2[:, 5:])
    # Changing positions >= 5 must not change outputs before 5.
    assert torch.equal(naive_causal_attention(q, k2, v2)[:, :5], out[:, :5])
    # The first position attends to itself alone.
    assert torch.allclose(out[:, 0], v[:, 0].repeat_interleave(1, dim=1))


def test_rope_scores_depend_only_on_relative_position():
    cos, sin = rope_tables(32, 8, 10000.0)
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def score(i, j):
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return (qi * kj).sum().item()

    assert score(3, 1) == pytest.approx(score(12, 10), rel=1e-5)
    assert score(5, 5) == pytest.approx((q * k).sum().item(), rel=1e-5)
    assert score(4, 1) != pytest.approx(score(4, 2), rel=1e-3)


def _layer(kind: str, **overrides):
    torch.manual_seed(0)
    config = model_config("tiny", attention=kind, **overrides)
    layer = GroupedTiedAttention(config) if kind == "gta" else GroupedQueryAttention(config)
    return config, layer.double()


@pytest.mark.parametrize("kind", ["gqa", "gta"])
def test_attention_layer_matches_a_naive_layer(kind):
    config, layer = _layer(kind)
    x = torch.randn(2, 63, config.d_model, dtype=torch.float64)
    cos, sin = rope_tables(63, config.head_dim // 2 if kind == "gta" else config.head_dim, config.rope_theta)
    q, k, v = layer.project(x, cos, sin)
    ref = layer.w_out(naive_causal_attention(q, k, v).flatten(2))
    assert rel_rms(layer(x, cos, sin), ref) < 1e-10


def test_gta_ties_key_and_value_and_shares_the_rope_key():
    config, layer = _layer("gta", n_kv_heads=2)
    d, r = config.head_dim, config.head_dim // 2
    x = torch.randn(1, 10, config.d_model, dtype=torch.float64)
    cos, sin = rope_tables(10, r, config.rope_theta)
    q, k, v = layer.project(x, cos, sin)
    assert q.shape == (1, 10, config.n_heads, d) and k.shape == v.shape == (1, 10, 2, d)
    # The value is the tied state; the key's un-rotated half is the same numbers.
    assert torch.equal(k[..., : d - r], v[..., : d - r])
    # One RoPE key for every group.
    assert torch.equal(k[:, :, 0, d - r :], k[:, :, 1, d - r :])
    # At position 0 RoPE is the identity: the rope half is the raw projection.
    raw_rope = layer.w_kv(x)[..., -r:]
    assert torch.allclose(k[0, 0, 0, d - r :], raw_rope[0, 0])
    # GTA's projections are smaller than GQA's at the same group count.
    gqa = GroupedQueryAttention(config)
    assert sum(p.numel() for p in layer.parameters()) < sum(p.numel() for p in gqa.parameters())


@pytest.mark.parametrize("chunk_rows", [1, 5, 64])
def test_chunked_cross_entropy_matches_the_full_loss(chunk_rows):
    g = torch.Generator().manual_seed(chunk_rows)
    hidden = torch.randn(23, 16, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (23,), generator=g)
    loss = chunked_linear_cross_entropy(hidden, weight, targets, chunk_rows=chunk_rows)
    (loss * 3).backward()
    gh, gw = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    ref = full_cross_entropy(hidden, weight, targets)
    (ref * 3).backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    assert rel_rms(gh, hidden.grad) < 1e-12
    assert rel_rms(gw, weight.grad) < 1e-12


def test_model_loss_paths_agree_and_logits_have_the_vocab():
    torch.manual_seed(0)
    chunked = Transformer(model_config("tiny")).double()
    full = Transformer(model_config("tiny", loss="full")).double()
    full.load_state_dict(chunked.state_dict())
    ids = torch.randint(0, 50257, (2, 33))
    assert chunked(ids).shape == (2, 33, 50304)
    assert chunked(ids[:, :-1], ids[:, 1:]).item() == pytest.approx(
        full(ids[:, :-1], ids[:, 1:]).item(), rel=1e-10
    )
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        chunked(torch.zeros(1, 257, dtype=torch.long))


def test_module_loop_equals_the_block_loop():
    # hidden_states runs over modules (each add fused with the next norm, across blocks); FSDP2
    # runs block by block (Block.forward). Both are x + attn(N(x)), then + mlp(N(.)), per block.
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", n_layers=3)).double()
    ids = torch.randint(0, 50257, (2, 17))
    x = model.embed(ids).double()
    cos, sin = model.rope_cos[:17], model.rope_sin[:17]
    for block in model.blocks:
        x = block(x, cos, sin)
    assert rel_rms(model.hidden_states(ids), model.norm(x)) < 1e-12


def test_sizes_match_the_paper_shapes():
    config = model_config("468m")
    assert (config.n_layers, config.d_model, config.n_heads, config.mlp_hidden) == (24, 1024, 16, 2816)
    assert model_config("1.6b").d_model == 2048
    with torch.device("meta"):
        model = Transformer(config)
    per_layer = 4 * 1024**2 + 3 * 1024 * 2816 + 2 * 1024
    assert non_embedding_parameters(model) == 24 * per_layer + 1024 + 50304 * 1024
    attention = 6 * 24 * 1024 * 2048
    assert training_flops_per_token(model, 2048) == 6 * non_embedding_parameters(model) + attention


def test_bad_shapes_are_user_errors():
    with pytest.raises(UserError, match="not a multiple of n_kv_heads"):
        model_config("tiny", n_kv_heads=3)
    with pytest.raises(UserError, match="unknown model size"):
        model_config("7b")
