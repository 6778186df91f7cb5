"""The planned recipe against the old resize recipe at equal training compute: a Markdown table from the records.

Usage: ``python benchmarks/recipe_comparison.py results/recipe-comparison`` (after ``results/recipe-comparison/run.sh``).
Reads ``planned/runs.csv`` and ``resize/runs.csv`` (one row per cell) and prints, per dataset and recipe, the
cells that finished, the test Dice (mean over seeds of each cell's per-image mean, both recipes scored on the
original test pixels), its spread over seeds, the training compute actually spent and what each recipe trained on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

RECIPES = {"planned": "planned (native scale)", "resize": "resize to 96 px"}


def _describe(group: pd.DataFrame) -> str:
    row = group.iloc[0]
    if isinstance(row.get("patch_size"), str):
        return f"{row['sampling']} {row['patch_size']}, batch {int(row['batch_size'])}, eval {row['eval_mode']}"
    return f"{int(row['image_size'])} px squares, batch {int(row['batch_size'])}, eval upsampled"


def comparison_table(folder: Path) -> pd.DataFrame:
    """One row per (dataset, recipe) from ``folder/{planned,resize}/runs.csv``."""
    rows = []
    for recipe, label in RECIPES.items():
        path = folder / recipe / "runs.csv"
        if not path.is_file():
            continue
        runs = pd.read_csv(path)
        for dataset, group in runs.groupby("dataset", sort=True):
            ok = group[group["status"] == "ok"]
            rows.append({"dataset": dataset, "recipe": label, "cells ok": f"{len(ok)}/{len(group)}",
                         "test Dice (per-image mean)": ok["dice"].mean(), "std over seeds": ok["dice"].std(),
                         "TFLOPs per cell": ok["train_tflops"].mean(), "steps": ok["steps_done"].mean(),
                         "trained on": _describe(group)})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (3 decimals for scores, 1 for compute)."""
    formats = {"test Dice (per-image mean)": "{:.3f}", "std over seeds": "{:.3f}", "TFLOPs per cell": "{:.1f}",
               "steps": "{:.0f}"}
    shown = table.copy()
    for column, fmt in formats.items():
        shown[column] = [("" if pd.isna(v) else fmt.format(v)) for v in shown[column]]
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


if __name__ == "__main__":
    print(markdown(comparison_table(Path(sys.argv[1] if len(sys.argv) > 1 else "results/recipe-comparison"))))
