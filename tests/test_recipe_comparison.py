"""The README's planned-vs-resize table is the one ``benchmarks/recipe_comparison.py`` makes from the records."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "results" / "recipe-comparison"


def _module():
    spec = importlib.util.spec_from_file_location("recipe_comparison", ROOT / "benchmarks" / "recipe_comparison.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (FOLDER / "planned" / "runs.csv").is_file(), reason="results/recipe-comparison is absent")
def test_the_readme_table_matches_the_committed_records():
    rc = _module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(re.escape(rc.BEGIN) + r"\n(.*?)\n" + re.escape(rc.END), text, flags=re.DOTALL)
    assert block, "README.md lost the recipe comparison block"
    assert block.group(1) == rc.markdown(rc.comparison_table(FOLDER)), (
        "run: python benchmarks/recipe_comparison.py results/recipe-comparison --readme README.md")
