"""The whole suite on a tiny random torch model with small limits: plumbing, ranges, results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from test_eval_fakes import ByteTokenizer

from redpajama.errors import UserError
from redpajama.training.evaluation import aggregate, suite
from redpajama.training.evaluation.perplexity import load_wikitext, wikitext_detokenize
from redpajama.training.evaluation.suite import Limits

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class TinyLM(torch.nn.Module):
    """Embedding -> causal depthwise conv -> vocab: a small random causal model with real layers."""

    def __init__(self, vocab_size: int = 257, width: int = 16, max_positions: int = 256) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab_size, width)
        self.conv = torch.nn.Conv1d(width, width, kernel_size=3, padding=2, groups=width)
        self.head = torch.nn.Linear(width, vocab_size)
        self.dropout = torch.nn.Dropout(0.5)
        self.max_positions = max_positions

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        assert input_ids.shape[1] <= self.max_positions
        x = self.embed(input_ids).transpose(1, 2)
        x = self.conv(x)[..., : input_ids.shape[1]].transpose(1, 2)  # drop the right padding: causal
        return self.head(self.dropout(torch.tanh(x))).to(torch.bfloat16)


def test_suite_runs_every_task_and_writes_results(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data not found")
    model = TinyLM().train()
    out = tmp_path / "run" / "results.json"
    windows = [torch.randint(0, 256, (2, 65)), torch.randint(0, 256, (1, 65))]
    report = suite.run(
        model,
        ByteTokenizer(),
        limits=Limits(wikitext_documents=1, blimp_per_paradigm=2, piqa=6),
        max_len=256,
        batch_size=64,
        held_out_windows=windows,
        data_dir=SHARED_DATA,
        out_path=out,
    )
    assert model.training  # eval mode only while scoring
    assert json.loads(out.read_text()) == report
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]
    tasks = report["tasks"]
    assert list(tasks) == ["held_out", "wikitext2", "blimp", "piqa"]
    assert tasks["held_out"]["n_tokens"] == 3 * 64
    wiki = tasks["wikitext2"]
    first_article = load_wikitext("test", SHARED_DATA)[0]
    assert wiki["n_documents"] == 1 and wiki["n_tokens"] == len(wikitext_detokenize(first_article).encode())
    # A random model over 257 bytes sits near log2(257) bits per token; never below 0 or absurd.
    assert 1.0 < wiki["token_perplexity"] < 1000 and 0 < wiki["bits_per_byte"] < 20
    assert wiki["word_perplexity"] > wiki["byte_perplexity"] > 1
    assert tasks["blimp"]["n_paradigms"] == 67 and tasks["blimp"]["n_pairs"] == 134
    assert 0 <= tasks["blimp"]["accuracy"] <= 1
    assert tasks["piqa"]["n"] == 6 and 0 <= tasks["piqa"]["acc"] <= 1 and 0 <= tasks["piqa"]["acc_norm"] <= 1
    assert report["settings"]["limits"] == {"wikitext_documents": 1, "blimp_per_paradigm": 2, "piqa": 6}
    assert set(report["seconds"]) == set(tasks)
    [row] = aggregate.comparison_table({"tiny": report})
    assert row["piqa"] == pytest.approx(100 * tasks["piqa"]["acc_norm"])
    assert math.isfinite(row["norm_avg"]) and row["held_out_ppl"] == tasks["held_out"]["token_perplexity"]


def test_suite_is_deterministic_under_eval_mode() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data not found")
    model = TinyLM().train()  # dropout would change scores if the suite did not switch to eval
    kwargs = {"tasks": ["piqa"], "limits": Limits(piqa=8), "max_len": 256, "data_dir": SHARED_DATA}
    first = suite.run(model, ByteTokenizer(), batch_size=1, **kwargs)["tasks"]["piqa"]
    second = suite.run(model, ByteTokenizer(), batch_size=5, **kwargs)["tasks"]["piqa"]
    assert first == second


def test_bad_tasks_and_limits_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown evaluation task"):
        suite.run(TinyLM(), ByteTokenizer(), tasks=["hellaswag"])
    with pytest.raises(UserError, match="no evaluation tasks"):
        suite.run(TinyLM(), ByteTokenizer(), tasks=[])
    with pytest.raises(UserError, match="limit piqa must be a positive integer"):
        Limits(piqa=0)


def test_benchmark_folders_are_found_from_argument_env_or_upward_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redpajama.training.evaluation import DATA_ENV, find_data

    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(UserError, match="bench-piqa-valid not found"):
        find_data("bench-piqa-valid")
    (tmp_path / "bench-piqa-valid").mkdir()
    assert find_data("bench-piqa-valid") == tmp_path / "bench-piqa-valid"
    monkeypatch.delenv(DATA_ENV)
    if SHARED_DATA.is_dir():  # the checkout sits next to shared/: found with no setting
        assert find_data("bench-blimp").resolve() == (SHARED_DATA / "bench-blimp").resolve()
    with pytest.raises(UserError, match="no-such-benchmark/ not found"):
        find_data("no-such-benchmark")
