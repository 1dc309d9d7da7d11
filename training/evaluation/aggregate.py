"""Compare evaluated subsets the way the RedPajama-V2 paper's Table 5 does: Avg and Norm.Avg.

Definitions (REFERENCE A.6.2, paper Table 4): task scores are percentages; "Avg" is their plain
mean; "Norm. Avg." is the mean of `(score - random) / (100 - random)` with each task's random
baseline, so a task where chance is 50% counts for what a model adds above chance. With the
paper's baselines these reproduce its published aggregates (e.g. Table 5 row 8: 37.6 / 0.160).

Our local suite scores PIQA by `acc_norm` (the paper's metric) and BLiMP by accuracy (not in the
paper; chance is 50% for a minimal pair). Averages run over the tasks every compared run has, so
rows stay comparable when one run skipped a task. The paper's Rank-Score is left out: its
normalization is not pinned down (REFERENCE A.6.2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from redpajama.errors import UserError
from redpajama.io import atomic

# Random baselines in percent, from the paper's Table 4 (REFERENCE A.6.2).
PAPER_RANDOM_BASELINES: dict[str, float] = {
    "anli": 25.0,
    "arc_challenge": 25.0,
    "arc_easy": 25.0,
    "winogrande": 50.0,
    "hellaswag": 25.0,
    "lambada": 0.0,
    "coqa": 0.0,
    "mmlu": 25.0,
    "openbookqa": 25.0,
    "piqa": 50.0,
    "pubmedqa": 33.3,
    "sciq": 25.0,
    "social_iqa": 25.0,
    "truthfulqa": 25.0,
}
RANDOM_BASELINES: dict[str, float] = {**PAPER_RANDOM_BASELINES, "blimp": 50.0}

# Task in results.json -> the metric that becomes its score (a fraction there, percent here).
TASK_METRICS: dict[str, str] = {"piqa": "acc_norm", "blimp": "accuracy"}

# Column -> (task, key) of the perplexity-like numbers shown next to the scores (lower is better).
PERPLEXITY_COLUMNS: dict[str, tuple[str, str]] = {
    "held_out_ppl": ("held_out", "token_perplexity"),
    # One held-out set for every run (an ablation's first subset), so the column compares runs.
    "reference_ppl": ("held_out_reference", "token_perplexity"),
    "wikitext2_word_ppl": ("wikitext2", "word_perplexity"),
    "wikitext2_bpb": ("wikitext2", "bits_per_byte"),
}


def normalized(score: float, random: float) -> float:
    """`(score - random) / (100 - random)`: 0 at chance, 1 at a perfect score (percent inputs)."""
    if random >= 100:
        raise ValueError(f"a random baseline of {random}% leaves nothing to normalize by")
    return (score - random) / (100.0 - random)


def average(scores: Mapping[str, float]) -> float:
    if not scores:
        raise ValueError("no task scores to average")
    return sum(scores.values()) / len(scores)


def normalized_average(
    scores: Mapping[str, float], baselines: Mapping[str, float] = RANDOM_BASELINES
) -> float:
    """The paper's Norm. Avg. over `scores` (task -> percent); every task needs a baseline."""
    missing = [task for task in scores if task not in baselines]
    if missing:
        raise ValueError(f"no random baseline for task(s) {', '.join(missing)}")
    return average({task: normalized(score, baselines[task]) for task, score in scores.items()})


def task_scores(results: Mapping[str, Any]) -> dict[str, float]:
    """`{task: percent}` for the scored tasks present in one suite results dict."""
    tasks = results.get("tasks", {})
    return {
        task: 100.0 * float(tasks[task][metric])
        for task, metric in TASK_METRICS.items()
        if task in tasks and tasks[task].get(metric) is not None
    }


def comparison_table(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per run name, in the given order: task scores, avg, norm_avg, perplexities.

    Task columns are every scored task any run has (None where a run lacks it); avg and norm_avg
    use only the tasks all runs have. Perplexity columns are None where a run has no such number.
    """
    per_run = {name: task_scores(result) for name, result in results.items()}
    all_tasks = [task for task in TASK_METRICS if any(task in scores for scores in per_run.values())]
    common = [task for task in all_tasks if all(task in scores for scores in per_run.values())]
    rows = []
    for name, result in results.items():
        scores = per_run[name]
        shared = {task: scores[task] for task in common}
        row: dict[str, Any] = {"name": name}
        row.update({task: scores.get(task) for task in all_tasks})
        row["avg"] = average(shared) if shared else None
        row["norm_avg"] = normalized_average(shared) if shared else None
        for column, (task, key) in PERPLEXITY_COLUMNS.items():
            row[column] = result.get("tasks", {}).get(task, {}).get(key)
        rows.append(row)
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-markdown table of `comparison_table` rows; columns no row fills are left out."""
    if not rows:
        return ""
    columns = [key for key in rows[0] if key == "name" or any(row.get(key) is not None for row in rows)]
    lines = [
        "| " + " | ".join(_header(column) for column in columns) + " |",
        "|" + "|".join("---" if column == "name" else "---:" for column in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(column, row.get(column)) for column in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[Mapping[str, Any]], path_png: str | os.PathLike[str]) -> None:
    """Grouped bars: one group per task plus Avg, one colour per run, dashed chance line per group.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), and
    writes the PNG atomically.
    """
    if not rows:
        raise ValueError("no rows to plot")
    try:  # imported here: the rest of the module (and of the package) does not need matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise UserError("plotting the comparison needs matplotlib", hint="pip install matplotlib") from error
    groups = [key for key in rows[0] if key in TASK_METRICS] + ["avg"]
    figure = Figure(figsize=(max(4.0, 1.6 * len(groups) + 0.4 * len(rows)), 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / len(rows)
    palette = [f"C{i % 10}" for i in range(len(rows))]
    for index, row in enumerate(rows):
        positions = [g + (index - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        heights = [row.get(group) if row.get(group) is not None else 0.0 for group in groups]
        axes.bar(positions, heights, width=width, color=palette[index], label=str(row["name"]))
    for g, group in enumerate(groups):
        chance = RANDOM_BASELINES.get(group)
        if chance is not None:
            axes.hlines(
                chance, g - 0.45, g + 0.45, colors="black", linestyles="dashed", linewidth=1, zorder=3
            )
    axes.set_xticks(range(len(groups)), [_header(group) for group in groups])
    axes.set_ylabel("score (%)")
    axes.set_title("Ablation benchmarks (dashed: chance)")
    axes.legend(fontsize="small", loc="best")
    figure.tight_layout()
    with atomic.atomic_path(path_png) as temp:
        figure.savefig(temp, format="png", dpi=120)


_HEADERS = {
    "name": "Subset",
    "piqa": "PIQA",
    "blimp": "BLiMP",
    "avg": "Avg",
    "norm_avg": "Norm.Avg",
    "held_out_ppl": "Own held-out ppl",
    "reference_ppl": "Reference held-out ppl",
    "wikitext2_word_ppl": "WikiText-2 word ppl",
    "wikitext2_bpb": "WikiText-2 bpb",
}


def _header(column: str) -> str:
    return _HEADERS.get(column, column)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if column == "name":
        return str(value)
    if column in ("norm_avg", "wikitext2_bpb"):
        return f"{value:.3f}"
    if column in PERPLEXITY_COLUMNS:
        return f"{value:.2f}"
    return f"{value:.1f}"
