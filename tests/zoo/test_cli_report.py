"""zoo report, zoo leaderboard --no-html, and zoo bench recording its command line (the page's header)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.zoo.test_bench import _synth
from tests.zoo.test_page import render_synth
from zoo.bench.records import read_json
from zoo.cli import main


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    return render_synth(tmp_path_factory.mktemp("cli-report"), plots=False)


def test_zoo_report_writes_the_page_and_refuses_a_folder_without_tables(page, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "page.html"
    assert main(["report", str(page.parent), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")  # zoo leaderboard's page, exactly
    assert str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no leaderboard.csv" in capsys.readouterr().err


def test_leaderboard_without_html_writes_no_page(tmp_path):
    _synth(tmp_path, np.random.default_rng(1), datasets=("a",))
    assert main(["leaderboard", str(tmp_path), "--no-plots", "--no-html"]) == 0
    assert (tmp_path / "leaderboard.csv").exists() and not (tmp_path / "report.html").exists()


def test_zoo_bench_records_its_command_line_in_plan_json(tmp_path, monkeypatch):
    from zoo import api

    seen = {}

    def bench(plan, out, **kwargs):
        seen.update(kwargs)
        raise api.ZooError("stop here")  # the command line is all this test needs

    monkeypatch.setattr(api, "bench", bench)
    argv = ["bench", "--models", "unet", "--profile", "quick", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert seen["command"] == ("zoo", *argv)


def test_each_run_into_a_folder_adds_an_invocation(tmp_path):
    from zoo.bench.runner import _invocations

    first = _invocations(tmp_path, ["zoo", "bench", "--shard", "1/2"], (1, 2))
    (tmp_path / "plan.json").write_text(json.dumps({"invocations": first}))
    both = _invocations(tmp_path, None, None)
    assert [i["command"] for i in both] == [["zoo", "bench", "--shard", "1/2"], None]
    assert both[0]["shard"] == "1/2" and both[0]["host"] and both[1]["started_at"]
    assert read_json(tmp_path / "plan.json") == {"invocations": first}
