"""The results page's prose is generated from the committed tables (issue 13: no hand-written claims)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.bench.summary import BEGIN, END, results_summary, update_results_block

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "results" / "cpu-grid"


def test_the_results_readme_says_what_the_committed_tables_say():
    import re

    text = (ROOT / "results" / "README.md").read_text()
    marker = re.escape(BEGIN).replace(re.escape("{folder!r}"), "'([^']+)'")
    blocks = re.findall(marker + r"\n(.*?)" + re.escape(END), text, flags=re.DOTALL)
    assert any(folder == "cpu-grid" for folder, _ in blocks)
    for folder, block in blocks:
        if not (ROOT / "results" / folder / "leaderboard.csv").is_file():
            continue
        assert block == results_summary(ROOT / "results" / folder), (
            f"run: zoo leaderboard results/{folder} --readme results/README.md")


@pytest.mark.skipif(not (GRID / "leaderboard.csv").is_file(), reason="results/cpu-grid is not in this checkout")
def test_update_results_block_rewrites_only_its_block(tmp_path):
    page = tmp_path / "README.md"
    begin = BEGIN.format(folder="cpu-grid")
    page.write_text(f"# kept\n\n{begin}\nstale claim\n{END}\n\nkept too\n")
    assert update_results_block(page, GRID) is True
    assert page.read_text() == f"# kept\n\n{begin}\n{results_summary(GRID)}{END}\n\nkept too\n"
    assert update_results_block(page, GRID) is False
    page.write_text("no block\n")
    with pytest.raises(ValueError, match="no block"):
        update_results_block(page, GRID)


def test_a_dataset_with_one_variant_so_far_is_said_not_crashed_on():
    import pandas as pd

    from zoo.bench.summary import _separation

    separation = pd.DataFrame({"dataset": ["a", "b"], "verdict": ["at this budget, `a` separates 1 of 1 pairs", None],
                               "kendall_tau": [1.0, None], "share_identical": [1.0, 1.0]})
    board = pd.DataFrame({"dataset": ["a", "a", "b"], "model": ["m", "n", "m"], "variant": ["m", "n", "m"],
                          "dice_std": [0.01, 0.02, 0.03], "tied_for_first": [True, False, True]})
    lines = _separation(separation, board, "dice")
    assert lines[1].startswith("  - At this budget, `a` separates 1 of 1 pairs")
    assert lines[2] == "  - `b`: one variant so far, nothing to separate."
    assert lines[3] == "- **Tied for first** (95% rank interval includes 1): `a` 1 of 2; `b` 1 of 1."


def test_a_variant_unstable_across_seeds_is_named_and_a_steady_one_is_not():
    import pandas as pd

    from zoo.bench.summary import _unstable

    board = pd.DataFrame({"dataset": ["a"] * 5 + ["b"] * 3, "variant": ["m", "n", "o", "p", "q", "m", "n", "o"],
                          "dice_std": [0.004, 0.005, 0.140, 0.006, 0.030, 0.002, 0.003, 0.015]})
    assert _unstable(board, "a", "dice") == ", unstable across seeds: o (std 0.140), q (std 0.030)"
    # five times the median but below 0.02 in metric units: seed noise, not instability
    assert _unstable(board, "b", "dice") == ""
