"""Table-5-style aggregates: the paper's Norm.Avg reproduced by hand, the table, markdown and plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from redpajama.training.evaluation.aggregate import (
    PAPER_RANDOM_BASELINES,
    average,
    comparison_table,
    normalized,
    normalized_average,
    plot_comparison,
    to_markdown,
)

# REFERENCE A.6.3: per-task scores of Table 5 row 8 (RPv2 2023-14, fuzzy dedup, full Gopher rules),
# published as Avg 37.6 and Norm.Avg 0.160.
ROW_8 = {
    "arc_easy": 38.3,
    "winogrande": 52.2,
    "hellaswag": 32.1,
    "lambada": 18.7,
    "mmlu": 27.0,
    "coqa": 11.3,
    "openbookqa": 28.8,
    "piqa": 62.8,
    "pubmedqa": 51.0,
    "sciq": 53.9,
}


def suite_results(*, piqa: float | None, blimp: float | None, word_ppl: float | None = None) -> dict:
    tasks: dict = {}
    if piqa is not None:
        tasks["piqa"] = {"acc": 0.0, "acc_norm": piqa, "n": 10}
    if blimp is not None:
        tasks["blimp"] = {"accuracy": blimp, "per_paradigm": {}, "n_pairs": 10}
    if word_ppl is not None:
        tasks["wikitext2"] = {"word_perplexity": word_ppl, "bits_per_byte": 1.25}
    return {"tasks": tasks}


def test_normalized_score() -> None:
    assert normalized(62.8, 50) == pytest.approx(0.256)
    assert normalized(25, 25) == 0.0 and normalized(100, 33.3) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        normalized(50, 100)


def test_paper_row_8_aggregates_are_reproduced() -> None:
    assert round(average(ROW_8), 1) == 37.6
    assert round(normalized_average(ROW_8, PAPER_RANDOM_BASELINES), 3) == 0.160
    # By hand, the PIQA term alone: (62.8 - 50) / 50.
    assert normalized_average({"piqa": 62.8}) == pytest.approx(0.256)
    with pytest.raises(ValueError, match="no random baseline for task"):
        normalized_average({"unknown": 50.0})


def test_comparison_table_rows_by_hand() -> None:
    rows = comparison_table(
        {
            "gopher": suite_results(piqa=0.60, blimp=0.70, word_ppl=120.0),
            "c4": suite_results(piqa=0.55, blimp=0.80),
        }
    )
    assert [row["name"] for row in rows] == ["gopher", "c4"]
    gopher, c4 = rows
    assert gopher["piqa"] == pytest.approx(60.0) and gopher["blimp"] == pytest.approx(70.0)
    assert gopher["avg"] == pytest.approx(65.0)
    assert gopher["norm_avg"] == pytest.approx(((60 - 50) / 50 + (70 - 50) / 50) / 2)  # 0.3
    assert c4["norm_avg"] == pytest.approx((0.1 + 0.6) / 2)
    assert gopher["wikitext2_word_ppl"] == 120.0 and c4["wikitext2_word_ppl"] is None
    assert gopher["held_out_ppl"] is None


def test_averages_use_only_tasks_every_run_has() -> None:
    rows = comparison_table(
        {"a": suite_results(piqa=0.6, blimp=0.9), "b": suite_results(piqa=0.7, blimp=None)}
    )
    assert rows[0]["blimp"] == pytest.approx(90.0) and rows[1]["blimp"] is None
    assert rows[0]["avg"] == pytest.approx(60.0) and rows[1]["avg"] == pytest.approx(70.0)


def test_markdown_table() -> None:
    rows = comparison_table({"gopher": suite_results(piqa=0.6, blimp=0.7, word_ppl=120.0)})
    text = to_markdown(rows)
    lines = text.splitlines()
    assert lines[0] == "| Subset | PIQA | BLiMP | Avg | Norm.Avg | WikiText-2 word ppl | WikiText-2 bpb |"
    assert lines[2] == "| gopher | 60.0 | 70.0 | 65.0 | 0.300 | 120.00 | 1.250 |"
    assert to_markdown([]) == ""


def test_plot_writes_a_png_atomically(tmp_path: Path) -> None:
    rows = comparison_table(
        {"gopher": suite_results(piqa=0.6, blimp=0.7), "c4": suite_results(piqa=0.55, blimp=0.8)}
    )
    out = tmp_path / "plots" / "comparison.png"
    plot_comparison(rows, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert sorted(p.name for p in out.parent.iterdir()) == ["comparison.png"]
