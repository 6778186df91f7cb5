"""``leaderboard.md``: the benchmark's tables rendered as Markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["render_markdown", "markdown_table"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(board: pd.DataFrame, overall: pd.DataFrame, comparison: pd.DataFrame, runs: pd.DataFrame,
              main: str, plan: Mapping[str, Any] | None) -> str:
    """``leaderboard.md``: the plan, then per dataset the leaderboard, the overall ranking, the paired comparison
    and the cells that did not finish."""
    import pandas as pd

    parts = ["# Benchmark leaderboard", ""]
    if plan:
        parts += [f"Plan `{plan.get('name')}`: models {', '.join(plan.get('models', []))}; datasets "
                  f"{', '.join(plan.get('datasets', []))}; seeds {', '.join(map(str, plan.get('seeds', [])))}; "
                  f"profile `{plan.get('profile')}`.", ""]
    devices = sorted({str(d) for d in runs.get("device_name", []) if isinstance(d, str)})
    if devices:
        parts += [f"Device: {', '.join(devices)}.", ""]
    parts += [f"Main metric: `{main}` on the test split (mean of per-image values over seeds; 95% CI by bootstrap "
              f"over test images and seeds). Costs are means over seeds; inference at the training image size.", ""]
    for dataset in sorted(board["dataset"].unique()) if not board.empty else []:
        part = board[board["dataset"] == dataset]
        rows = []
        for _, r in part.iterrows():
            ci = f"[{_fmt(r.get(f'{main}_ci_low'))}, {_fmt(r.get(f'{main}_ci_high'))}]"
            params = r.get("n_parameters")
            rows.append(["-" if pd.isna(r["rank"]) else int(r["rank"]), r["variant"],
                         f"{r['n_seeds']}/{r['n_cells']}", _fmt(r.get(f"{main}_mean")), _fmt(r.get(f"{main}_std")),
                         ci, _fmt(r.get(f"{main}_pooled_mean")),
                         _fmt(params / 1e6, 3) if params is not None and not math.isnan(params) else "-",
                         _fmt(r.get("gmacs")), _fmt(r.get("train_seconds"), 1), _fmt(r.get("infer_images_per_s"), 1),
                         _fmt(r.get("peak_memory_mb"), 0)])
        parts += [f"## {dataset}", "", markdown_table(
            ["rank", "variant", "ok seeds", f"{main} mean", "std", "95% CI", f"{main} pooled", "params (M)",
             "GMACs", "train s", "infer img/s", "peak MB"], rows), ""]
    if not overall.empty and overall["variant"].nunique() > 0 and board["dataset"].nunique() > 1:
        rank_cols = [c for c in overall.columns if c.startswith("rank/")]
        rows = [[r["overall_rank"], r["variant"], _fmt(r["mean_rank"], 2), *(_fmt(r[c], 0) for c in rank_cols)]
                for _, r in overall.iterrows()]
        parts += ["## Overall (mean rank across datasets)", "",
                  markdown_table(["rank", "variant", "mean rank", *rank_cols], rows), ""]
    if not comparison.empty:
        rows = [[r["dataset"], r["variant"], r["baseline"], r["n_pairs"], _fmt(r["mean_difference"], 4),
                 _fmt(r["p_value"], 4), "yes" if r["significant_0.05"] else "no"] for _, r in comparison.iterrows()]
        parts += [f"## Paired comparison against the baseline (`{main}`, Wilcoxon signed-rank)", "",
                  markdown_table(["dataset", "variant", "baseline", "pairs", "mean difference", "p-value",
                                   "p < 0.05"], rows), ""]
    bad = runs[runs["status"] != "ok"] if "status" in runs.columns else runs.iloc[0:0]
    if not bad.empty:
        rows = [[r["cell_id"], r["status"], str(r.get("error") or "")[:160]] for _, r in bad.iterrows()]
        parts += ["## Cells that did not finish", "", markdown_table(["cell", "status", "error"], rows), ""]
    return "\n".join(parts)
