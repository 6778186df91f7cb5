"""report.html (zoo.bench.page, zoo report): content and self-containment, read back with an HTML parser.

The browser checks (sorting, filtering, opening a cell, console errors, network) are in test_page_browser.py.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.zoo.test_bench import _synth
from zoo.bench.page import render_report
from zoo.bench.records import read_json, read_record, write_json, write_record
from zoo.bench.report import write_leaderboard
from zoo.errors import ZooError

GRID = Path(__file__).resolve().parents[2] / "results" / "cpu-grid"
COMMAND = ["zoo", "bench", "--config", "my grid.toml", "--out", "results/synth"]
PLAN = {"version": 1, "dataset": "a", "patch_size": [64, 64], "batch_size": 4,
        "reasons": {"patch": "whole images: they fit", "loss": "Dice + cross-entropy (nnU-Net's default)"},
        "overrides": ["lr"]}


def render_synth(folder: Path, *, plots: bool = True) -> Path:
    """The synthetic grid of test_bench (datasets a, b; models m1-m3; cell b__m3__s2 failed) with a recorded
    command and a planned cell, rendered by ``zoo leaderboard``; returns its report.html."""
    _synth(folder, np.random.default_rng(0))
    plan = read_json(folder / "plan.json") or {}
    write_json(folder / "plan.json", {**plan, "invocations": [{"command": COMMAND, "host": "box",
                                                               "started_at": "2026-12-01T10:00:00+00:00"}]})
    record = read_record(folder / "cells" / "a__m2__s1")
    assert record is not None
    record.plan = PLAN
    write_record(folder / "cells" / "a__m2__s1", record)
    written = write_leaderboard([folder], folder, plots=plots)
    return written["report"]


@dataclass
class Table:
    id: str
    caption: str = ""
    headers: list[tuple[str, dict]] = field(default_factory=list)  # (text, attrs) of thead cells
    rows: list[tuple[dict, list[tuple[str, dict, str]]]] = field(default_factory=list)  # (tr attrs, cells)
    body: int = 0  # which tbody the row is in (1: models, 2: floors)


class Page(HTMLParser):
    """Tables (with their cells' attributes), images, links, details and the text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Table] = {}
        self.images: list[dict] = []
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.details: dict[str, list[str]] = {}
        self._stack: list[tuple[str, dict]] = []
        self._table: Table | None = None
        self._cell: tuple[str, dict, list[str]] | None = None
        self._text: list[str] = []
        self._open_details: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.ids.add(a.get("id", ""))
        if tag == "img":
            self.images.append(a)
        elif tag == "a":
            self.hrefs.append(a.get("href", ""))
        elif tag == "details" and a.get("id"):
            self._open_details.append(a["id"])
            self.details[a["id"]] = []
        elif tag == "table":
            self._table = Table(a.get("id", ""))
            self.tables[self._table.id] = self._table
        elif tag == "tbody" and self._table:
            self._table.body += 1
        elif tag == "tr" and self._table and self._table.body:
            self._table.rows.append((a, []))
        elif tag in ("th", "td", "caption") and self._table:
            self._cell = (tag, a, [])
        if tag not in ("img", "meta", "input", "br", "rect", "line", "polyline"):
            self._stack.append((tag, a))

    def handle_endtag(self, tag):
        if tag in ("th", "td", "caption") and self._cell and self._table:
            kind, attrs, parts = self._cell
            content = " ".join("".join(parts).split())
            if kind == "caption":
                self._table.caption = content
            elif self._table.body == 0:
                self._table.headers.append((content, attrs))
            else:
                self._table.rows[-1][1].append((kind, attrs, content))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "details" and self._open_details and self._stack and self._stack[-1][1].get("id") == \
                self._open_details[-1]:
            self._open_details.pop()
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        self._text.append(data)
        if self._cell:
            self._cell[2].append(data)
        for key in self._open_details:
            self.details[key].append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self._text).split())


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, str, Page]:
    path = render_synth(tmp_path_factory.mktemp("page"))
    html = path.read_text(encoding="utf-8")
    return path, html, Page(html)


def _column(table: Table, label: str) -> int:
    return next(i for i, (text, _) in enumerate(table.headers) if text == label)


def _check_against_csv(page: Page, board: pd.DataFrame, main: str = "dice") -> int:
    """Every dataset's leaderboard on the page holds leaderboard.csv's rows, values and order; returns rows."""
    checked = 0
    for dataset, part in board.groupby("dataset"):
        table = page.tables[f"leaderboard-{dataset}"]
        models = part[part["model"] != "floor"]
        rows = [cells for attrs, cells in table.rows if "floor" not in attrs.get("class", "")]
        assert [c[3][2] for c in rows] == models["variant"].tolist()  # in rank order
        mean, ci, pooled, rank = (_column(table, label) for label in
                                  (f"{main} (per-image mean)", "95% CI", f"{main} (pooled)", "rank"))
        for cells, (_, r) in zip(rows, models.iterrows()):
            assert cells[3][0] == "th" and cells[3][1]["scope"] == "row"
            assert float(cells[mean][1]["data-value"]) == pytest.approx(r[f"{main}_mean"], rel=1e-12)
            assert cells[mean][2] == f"{r[f'{main}_mean']:.3f}"
            assert cells[ci][2] == f"[{r[f'{main}_ci_low']:.3f}, {r[f'{main}_ci_high']:.3f}]"
            if not math.isnan(r[f"{main}_pooled_mean"]):
                assert float(cells[pooled][1]["data-value"]) == pytest.approx(r[f"{main}_pooled_mean"], rel=1e-12)
            assert cells[rank][2] == str(int(r["rank"]))
            checked += 1
        floors = [cells for attrs, cells in table.rows if "floor" in attrs.get("class", "")]
        assert [c[3][2] for c in floors] == part.loc[part["model"] == "floor", "variant"].tolist()
    return checked


def test_the_page_holds_the_leaderboard_csv(synth):
    path, _, page = synth
    assert _check_against_csv(page, pd.read_csv(path.parent / "leaderboard.csv")) == 6


def test_the_page_is_self_contained(synth):
    _, html, page = synth
    assert not re.search(r"https?://", html)
    assert not re.search(r"<link\b|@import|url\(", html)
    sources = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in page.hrefs)
    assert {h[1:] for h in page.hrefs} <= page.ids  # every link lands on the page


def test_the_page_is_accessible_markup(synth):
    _, html, page = synth
    assert re.search(r'<html lang="en">', html) and "<title>Benchmark synth</title>" in html
    for table in page.tables.values():
        assert table.caption, table.id
        assert table.headers and all(attrs.get("scope") == "col" for _, attrs in table.headers), table.id
    plots = {"bar_dice", "cost_dice", "curves", "pairs_a", "pairs_b", "ranks_a", "ranks_b"}
    assert set(re.findall(r"\(plots/(\w+)\.png\)", html)) == plots and len(page.images) == len(plots)
    assert all(len(img["alt"]) > 20 and int(img["width"]) > 0 for img in page.images)
    assert 'role="tablist"' in html and 'role="tabpanel"' in html and 'aria-controls="d-a"' in html
    assert 'aria-live="polite"' in html and "<legend>Show variants</legend>" in html


def test_the_header_says_what_where_when_and_the_command(synth):
    _, _, page = synth
    text = page.text
    assert "models m1, m2, m3; datasets a, b; seeds 0, 1, 2; 18 cells (1 failed, 17 ok)" in text
    assert shlex.join(COMMAND) in text and "# box, 2026-12-01T10:00:00+00:00" in text


def test_a_command_run_in_several_stretches_is_listed_once_with_its_runs():
    from zoo.bench.page import _commands

    again = {"command": COMMAND, "host": "box", "started_at": "2026-12-02T09:00:00+00:00"}
    other = {"command": [*COMMAND, "--seeds", "0"], "host": "box", "started_at": "2026-12-01T11:00:00+00:00"}
    first = {"command": COMMAND, "host": "box", "started_at": "2026-12-01T10:00:00+00:00"}
    assert _commands({"invocations": [first, other, again]}) == [
        shlex.join(COMMAND) + "    # 2 runs: box, 2026-12-01T10:00:00+00:00 to box, 2026-12-02T09:00:00+00:00",
        shlex.join(other["command"]) + "    # box, 2026-12-01T11:00:00+00:00"]
    assert _commands({"invocations": [{"command": None}]}) == ["(zoo.api.bench from Python: no command line)"]


def test_every_cell_has_a_detail_view_and_a_failed_cell_shows_its_error(synth):
    _, _, page = synth
    cells = page.tables["cells"]
    assert len(cells.rows) == 18 and len(page.details) == 18
    failed = page.details["cell-b__m3__s2"]
    assert "RuntimeError: boom" in " ".join(failed)
    row = next(cells for _, cells in page.tables["leaderboard-b"].rows if cells[3][2] == "m3")
    assert "s2 (failed)" in row[-1][2]
    status = next(c for _, c in cells.rows if c[0][2] == "b__m3__s2")
    assert status[4][2] == "failed" and status[-1][2] == "RuntimeError: boom"


def test_a_planned_cell_shows_its_plan_with_reasons_and_its_curve(synth):
    _, html, page = synth
    detail = " ".join(page.details["cell-a__m2__s1"])
    assert "whole images: they fit" in detail and "Dice + cross-entropy (nnU-Net's default)" in detail
    assert "replaced the plan's: lr" in detail
    assert "Loss of a__m2__s1 over epochs 1 to 2: train_loss from 1.000 to 0.500" in html
    assert "Validation dice of a__m2__s1 over epochs 1 to 2: val/dice from 0.300 to 0.600" in html


def test_the_variant_filter_and_sorting_have_what_they_need(synth):
    _, html, page = synth
    assert re.findall(r'name="variant" value="([^"]+)"', html) == ["m3", "m2", "m1"]  # overall order
    board = page.tables["leaderboard-a"]
    assert all(attrs["data-variants"] for attrs, _ in board.rows if "floor" not in attrs.get("class", ""))
    assert 'class="data sortable"' in html and '<button type="button" class="sort">' in html
    pairs = page.tables["pairs-a"]
    assert all(len(attrs["data-variants"].split()) == 2 for attrs, _ in pairs.rows)


def test_leaderboard_without_html_writes_no_page(tmp_path):
    _synth(tmp_path, np.random.default_rng(1), datasets=("a",))
    written = write_leaderboard([tmp_path], tmp_path, plots=False, html=False)
    assert "report" not in written and not (tmp_path / "report.html").exists()


def test_a_folder_without_tables_is_refused_in_one_line(tmp_path):
    with pytest.raises(ZooError, match=r"no leaderboard.csv in .*zoo leaderboard"):
        render_report(tmp_path)


def test_merged_shards_get_their_cells_from_the_shards(tmp_path):
    rng = np.random.default_rng(2)
    _synth(tmp_path / "s1", rng, datasets=("a",))
    _synth(tmp_path / "s2", rng, datasets=("b",))
    page = Page(write_leaderboard([tmp_path / "s1", tmp_path / "s2"], tmp_path / "all", plots=False)["report"]
                .read_text(encoding="utf-8"))
    assert len(page.details) == 18 and {"leaderboard-a", "leaderboard-b"} <= set(page.tables)


@pytest.mark.skipif(not (GRID / "report.html").is_file(), reason="results/cpu-grid/report.html is not in this checkout")
def test_the_committed_grid_page_matches_its_csvs_and_is_current():
    html = (GRID / "report.html").read_text(encoding="utf-8")
    assert _check_against_csv(Page(html), pd.read_csv(GRID / "leaderboard.csv")) == 45
    assert (GRID / "report.html").stat().st_size < 10e6
    assert render_report(GRID) == html, "results/cpu-grid/report.html is stale: run 'zoo report results/cpu-grid'"


def test_the_page_shows_test_images_only_of_the_datasets_it_may(synth, tmp_path):
    """A published page leaves out the qualitative grids of data whose licence does not allow sharing images."""
    import shutil

    from PIL import Image

    from zoo import cli

    folder = tmp_path / "grid"
    shutil.copytree(synth[0].parent, folder)
    for dataset in ("a", "b"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "plots" / f"qualitative_{dataset}.png")

    def grids(html: str) -> set[str]:
        return {d for d in ("a", "b") if f"Test images of {d}" in html}

    assert grids(render_report(folder)) == {"a", "b"}
    assert grids(render_report(folder, samples={"b"})) == {"b"}
    assert cli.main(["report", str(folder), "--samples", "none"]) == 0
    assert grids((folder / "report.html").read_text()) == set()
    assert cli.main(["report", str(folder), "--samples", "a"]) == 0
    assert grids((folder / "report.html").read_text()) == {"a"}
