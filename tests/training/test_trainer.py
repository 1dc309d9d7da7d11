"""The trainer on real text: the loss falls, a resumed run continues exactly, metrics and summary."""

from __future__ import annotations

import json

import pytest
from training_helpers import first_and_last_loss, losses, tiny_run

from redpajama.training.trainer.loop import train
from redpajama.training.trainer.metrics import read_metrics
from redpajama.training.trainer.schedule import learning_rate


def test_tiny_model_loss_falls_on_real_text(shakespeare_tokens, tmp_path):
    result = train(tiny_run(shakespeare_tokens, tmp_path, max_steps=60, warmup_fraction=0.1), device="cpu")
    first, last = first_and_last_loss(tmp_path, 60)
    # From ~ln(2048) = 7.6 at random init to about 6 nats within 60 small steps.
    assert first > 7.3 and last < 6.3, (first, last)
    assert result.held_out_loss is not None and result.held_out_loss < 6.5
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["steps"] == 60 and summary["tokens"] == 60 * 64 * 8
    assert (tmp_path / "checkpoints" / "latest.json").exists()


def test_gta_model_trains_too(shakespeare_tokens, tmp_path):
    overrides = {"attention": "gta"}
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=60, warmup_fraction=0.1, model_overrides=overrides)
    train(cfg, device="cpu")
    curve = losses(tmp_path)
    assert curve[1] > 7.3 and curve[60] < 6.3


def test_resume_reproduces_the_uninterrupted_run_exactly(shakespeare_tokens, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny_run(shakespeare_tokens, straight, max_steps=16, checkpoint_every=8), device="cpu")
    train(tiny_run(shakespeare_tokens, resumed, max_steps=16, checkpoint_every=8), device="cpu", stop_after=8)
    assert max(losses(resumed)) == 8
    train(tiny_run(shakespeare_tokens, resumed, max_steps=16, checkpoint_every=8), device="cpu")
    a, b = losses(straight), losses(resumed)
    assert sorted(b) == list(range(1, 17)), "metrics.jsonl reads as one run"
    # Exact equality: same batches, same optimizer state, same arithmetic.
    assert [b[s] for s in range(9, 17)] == [a[s] for s in range(9, 17)]


def test_metrics_after_the_checkpoint_are_dropped_on_resume(shakespeare_tokens, tmp_path):
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=12, checkpoint_every=4)
    train(cfg, device="cpu", stop_after=6)  # checkpoints at 4 and 6 (the stop)
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 4, "file": "step-00000004.pt"}))
    train(cfg, device="cpu")
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 13))


def test_token_budget_sets_the_steps(shakespeare_tokens, tmp_path):
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_tokens=5000)
    assert cfg.total_steps(world_size=1) == 10  # ceil(5000 / 512)
    assert cfg.total_steps(world_size=2) == 5


def test_schedule_warms_up_then_decays_to_the_floor():
    rates = [learning_rate(s, 100, 1.0, 0.1, 0.1) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_short_and_finished_runs_report_real_numbers(shakespeare_tokens, tmp_path):
    # One logging interval: its rate, flagged as including warm-up; a rerun of the finished run
    # reports that run instead of a NaN loss, and the summary stays valid JSON.
    cfg = tiny_run(shakespeare_tokens, tmp_path, max_steps=5, log_every=10)
    first = train(cfg, device="cpu")
    text = (tmp_path / "train_summary.json").read_text()
    summary = json.loads(text)
    assert "NaN" not in text and summary["rate_includes_warmup"] is True
    assert summary["tokens_per_second"] > 0 and first.final_loss == pytest.approx(summary["final_loss"])
    again = train(cfg, device="cpu")
    assert again.final_loss == first.final_loss and again.steps == 5
    assert json.loads((tmp_path / "train_summary.json").read_text()) == summary


def test_cuda_device_without_a_gpu_is_a_user_error(monkeypatch):
    import torch

    from redpajama.errors import UserError
    from redpajama.training.trainer.distributed import init_world

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA"):
        init_world("cuda")
