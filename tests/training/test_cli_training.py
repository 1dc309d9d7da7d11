"""`redpajama train` and `redpajama ablate` end to end on the CPU, through the CLI."""

from __future__ import annotations

import json

from training_helpers import shakespeare_documents, write_curated
from typer.testing import CliRunner

from redpajama.cli.app import _register_verbs, app

_register_verbs()
runner = CliRunner()


def test_train_command_writes_a_run(shakespeare_tokens, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(shakespeare_tokens), "-o", str(out), "--steps", "12", "--seq-len", "64"]
    result = runner.invoke(
        app, [*args, "--batch-size", "4", "--device", "cpu", "--no-compile", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["steps"] == 12 and summary["tokens"] == 12 * 64 * 4
    assert summary["flops_convention"].startswith("6 x non-embedding")
    # Rerun: resumes from the final checkpoint, nothing left to train.
    again = runner.invoke(app, [*args, "--batch-size", "4", "--device", "cpu", "--no-compile"])
    assert again.exit_code == 0, again.output


def test_train_command_warns_about_tokens_with_lost_parts(shakespeare_tokens, tmp_path):
    import shutil

    tokens = tmp_path / "tokens"
    shutil.copytree(shakespeare_tokens, tokens)
    index = json.loads((tokens / "index.json").read_text())
    index["lost"] = [{"file": "cur/a.parquet", "first_row": 0, "rows": None, "reason": "cannot open: x"}]
    (tokens / "index.json").write_text(json.dumps(index))
    args = ["train", "--data", str(tokens), "-o", str(tmp_path / "run"), "--steps", "2", "--seq-len", "32"]
    result = runner.invoke(app, [*args, "--batch-size", "2", "--device", "cpu", "--no-compile"])
    assert result.exit_code == 0, result.output
    assert "without 1 unreadable part(s)" in result.output


def test_train_command_reports_a_missing_token_folder(tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "index.json" in str(result.exception) or "index.json" in result.output


def test_ablate_compares_two_subsets(shakespeare_tokens, tmp_path):
    documents = shakespeare_documents()
    spam = ["buy cheap pills now " * 40 + f"offer {i}" for i in range(200)]
    clean = write_curated(tmp_path / "clean", documents[:3000])
    noisy = write_curated(tmp_path / "noisy", documents[:3000] + spam)
    tokenizer = shakespeare_tokens.parent / "tokenizer.json"
    out = tmp_path / "abl"
    # The form: one --subsets followed by every folder.
    args = ["ablate", "--subsets", str(noisy), str(clean), "-o", str(out), "--tokens", "8192"]
    args += ["--seq-len", "64", "--batch-size", "8", "--tokenizer", str(tokenizer), "--device", "cpu"]
    args += ["--no-compile", "--tasks", "blimp,piqa", "--blimp-limit", "2", "--piqa-limit", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = (out / "comparison.md").read_text()
    assert "| noisy |" in table and "| clean |" in table and "Norm.Avg" in table
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["noisy", "clean"]
    for row in rows:
        assert 0 <= row["piqa"] <= 100 and 0 <= row["blimp"] <= 100
        assert row["reference_ppl"] > 1 and row["held_out_ppl"] > 1
    for name in ("noisy", "clean"):
        summary = json.loads((out / "runs" / name / "train_summary.json").read_text())
        assert summary["tokens"] == 16 * 64 * 8  # 8192 tokens -> 16 steps of 512
    # Finished runs are reused: a rerun trains nothing and gives the same table.
    before = (out / "runs" / "clean" / "metrics.jsonl").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (out / "comparison.md").read_text() == table
    assert (out / "runs" / "clean" / "metrics.jsonl").stat().st_mtime_ns == before


def test_model_help_lists_every_size():
    from redpajama.cli.training_options import MODEL_SIZES
    from redpajama.training.model import SIZES

    assert MODEL_SIZES.split(", ") == list(SIZES)


def test_ablate_refuses_a_subset_with_unreadable_parts(shakespeare_tokens, tmp_path):
    subset = write_curated(tmp_path / "clean", shakespeare_documents()[:200])
    write_curated(tmp_path / "more", shakespeare_documents()[200:400])
    (tmp_path / "more" / "part-0.parquet").rename(subset / "part-1.parquet")
    broken = subset / "part-0.parquet"
    broken.write_bytes(b"PAR1 damaged")
    tokenizer = shakespeare_tokens.parent / "tokenizer.json"
    args = ["ablate", "--subsets", str(subset), "-o", str(tmp_path / "abl"), "--tokens", "512"]
    args += ["--tokenizer", str(tokenizer), "--device", "cpu", "--no-compile"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert f"{broken}: whole file: cannot open" in str(result.exception)
    assert not (tmp_path / "abl" / "runs").exists()
    # A token folder given directly, written by a tokenize run that lost rows, is refused the same way.
    tokens = tmp_path / "abl" / "tokens" / "clean"
    direct = runner.invoke(app, [*args[:2], str(tokens), *args[3:]])
    assert direct.exit_code != 0 and f"{broken}: whole file" in str(direct.exception)
