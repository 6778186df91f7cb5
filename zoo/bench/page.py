"""``report.html``: a benchmark folder as one self-contained page (``zoo report``; ``zoo leaderboard`` writes it).

The page is rendered from what ``zoo leaderboard`` wrote (``leaderboard.csv``, ``comparison.csv``, ...,
``plots/*.png``) and from the cell records, so it shows exactly the tables' numbers and needs neither the data
nor a recomputation. It is one file: the plots are embedded as base64 PNGs, the style sheet and the small script
(sorting, the variant filter, tabs, opening a cell) are inline, and nothing refers to a server or the network,
so it opens from disk, as an e-mail attachment or from any static host, and prints (all sections, no controls).
Without JavaScript every section is simply shown one after the other.

Layout: a header (what was run, where, when, with which versions and the exact command), the variant filter,
one tab per dataset (leaderboard with floors and costs, separation, seed advice, other metrics, per-class
scores, verdicts against the baseline, all pairs, the dataset's plots), an overall tab (cross-dataset ranking
and the grid's plots) and a cells tab (every cell; each opens to its recipe, plan with reasons, environment,
training curve, results, and status and error).
"""

from __future__ import annotations

import base64
import shlex
import struct
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from zoo.bench import page_tables as pt
from zoo.bench.leaderboard import timing_caveat
from zoo.bench.plan_text import recipe_line
from zoo.bench.markdown import PER_IMAGE
from zoo.bench.page_cells import CellView, cell_view
from zoo.bench.records import CellRecord, read_json, read_records
from zoo.bench.tables import metric_order
from zoo.errors import ZooError
from zoo.fileio import atomic_write_text

__all__ = ["REPORT_FILE", "render_report", "write_report"]

REPORT_FILE = "report.html"
_CSV = {"leaderboard": "leaderboard.csv", "overall": "leaderboard_overall.csv", "comparison": "comparison.csv",
        "pairs": "pairs.csv", "separation": "separation.csv", "advice": "seed_advice.csv", "runs": "runs.csv"}


@dataclass(frozen=True)
class Figure:
    """An embedded plot."""

    name: str
    alt: str
    caption: str
    uri: str
    width: int
    height: int


@dataclass
class DatasetView:
    """One dataset's tab."""

    name: str
    id: str
    tables: list[pt.Table] = field(default_factory=list)  # leaderboard first
    separation: str = ""
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Folder:
    """What a benchmark folder holds: its tables, records, plan and plots."""

    path: Path
    tables: dict[str, pd.DataFrame]
    records: list[CellRecord]
    plan: dict[str, Any]
    plots: dict[str, Path]


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def load_folder(folder: str | Path, sources: Sequence[str | Path] = ()) -> Folder:
    """Read a benchmark folder; its records (and ``plan.json``) from ``sources`` (default: the folder itself).

    Raises:
        ZooError: no ``leaderboard.csv`` (the tables are written by ``zoo leaderboard`` / ``zoo bench``).
    """
    path = Path(folder)
    if not (path / _CSV["leaderboard"]).is_file():
        raise ZooError(f"no leaderboard.csv in {path} (render the tables first: 'zoo leaderboard {path}')")
    tables = {name: _read_csv(path / file) for name, file in _CSV.items()}
    plots = {p.stem: p for p in sorted((path / "plots").glob("*.png"))}
    sources = [Path(s) for s in sources] or [path]
    plan = next((p for p in (read_json(s / "plan.json") for s in [*sources, path]) if p), {})
    return Folder(path, tables, read_records(sources), plan, plots)


# --- header ---------------------------------------------------------------------------------------------------

def _distinct(runs: pd.DataFrame, column: str) -> str:
    if column not in runs.columns:
        return ""
    return ", ".join(sorted({str(v) for v in runs[column].dropna()}))


def _when(runs: pd.DataFrame) -> str:
    if "started_at" not in runs.columns or runs["started_at"].dropna().empty:
        return ""
    span = f"{runs['started_at'].dropna().min()} to {runs['finished_at'].dropna().max()}"
    train = runs["train_seconds"].sum() / 60 if "train_seconds" in runs.columns else float("nan")
    return span + (f" ({train:.0f} min of training summed over cells)" if train == train else "")


def _versions(runs: pd.DataFrame) -> str:
    names = (("zoo", "zoo_version"), ("torch", "torch_version"), ("torchvision", "torchvision_version"),
             ("CUDA", "cuda_version"), ("Python", "python_version"))
    return "; ".join(f"{label} {_distinct(runs, col)}" for label, col in names if _distinct(runs, col))


def _plugins(runs: pd.DataFrame) -> str:
    if "plugin_distribution" not in runs.columns:
        return ""
    pairs = runs[["plugin_distribution", "plugin_version"]].dropna().drop_duplicates()
    return ", ".join(sorted(f"{d} {v}" for d, v in pairs.itertuples(index=False)))


def _what(plan: Mapping[str, Any], runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts().to_dict() if "status" in runs.columns else {}
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lists = [f"models {', '.join(plan.get('models', []))}", f"datasets {', '.join(plan.get('datasets', []))}",
             f"seeds {', '.join(map(str, plan.get('seeds', [])))}"] if plan else []
    return "; ".join([*lists, f"{len(runs)} cells ({status})" if len(runs) else "no cells"])


PLANNED_KEYS = ("image_size", "batch_size", "epochs", "max_steps")


def _recipe(plan: Mapping[str, Any]) -> str:
    if not plan:
        return ""
    planned = plan.get("plan_mode") == "auto" and plan.get("plans")
    # under a plan the profile's size, batch and epochs are fallbacks the dataset's plan and budget replace
    train = ", ".join(f"{k}={v}" for k, v in (plan.get("train") or {}).items()
                      if not (planned and k in PLANNED_KEYS))
    budgets = ", ".join(f"{k}: {v}" for k, v in (plan.get("budgets") or {}).items())
    return "; ".join(p for p in (f"profile {plan.get('profile')}", f"plan {plan.get('plan_mode', 'none')}" +
                                 (" (each dataset's recipe is in its tab)" if planned else ""),
                                 f"budgets {budgets}" if budgets else "", train) if p)


def _commands(plan: Mapping[str, Any]) -> list[str]:
    """The recorded ``zoo bench`` command lines, one per distinct command in the order first run, with the hosts and
    start times of the invocations that ran it (a resumable grid runs one command in many stretches)."""
    runs: dict[str, list[str]] = {}
    for item in plan.get("invocations") or []:
        if not isinstance(item, Mapping):
            continue
        command = item.get("command")
        line = shlex.join(map(str, command)) if command else "(zoo.api.bench from Python: no command line)"
        runs.setdefault(line, []).append(", ".join(str(item[k]) for k in ("host", "started_at") if item.get(k)))
    out = []
    for line, where in runs.items():
        where = [w for w in where if w]
        note = (where[0] if len(where) == 1 else
                f"{len(where)} runs: {where[0]} to {where[-1]}" if where else "")
        out.append(line + (f"    # {note}" if note else ""))
    return out


def header(folder: Folder) -> dict[str, Any]:
    """The page's title, facts (label, text) and command lines."""
    runs, plan = folder.tables["runs"], folder.plan
    where = "; ".join(p for p in (_distinct(runs, "host"), _distinct(runs, "device_name"),
                                  f"device {_distinct(runs, 'device')}" if _distinct(runs, "device") else "",
                                  f"threads {_distinct(runs, 'threads')}" if _distinct(runs, "threads") else "")
                      if p)
    facts = [("What", _what(plan, runs)), ("Recipe", _recipe(plan)), ("Where", where), ("When", _when(runs)),
             ("Versions", _versions(runs)), ("Plugins", _plugins(runs)), ("Folder", folder.path.name)]
    return {"title": f"Benchmark {plan.get('name') or folder.path.name}",
            "facts": [(k, v) for k, v in facts if v], "commands": _commands(plan)}


# --- plots ----------------------------------------------------------------------------------------------------

def _alt(name: str, main: str) -> tuple[str, str]:
    """(alt text, caption) of a plot, by its file name."""
    kind, _, rest = name.partition("_")
    texts = {
        "bar": (f"Bar chart of {rest} per variant, one panel per dataset, with bootstrap 95% confidence intervals "
                f"as error bars and the floors as dashed lines", f"{rest}: means with 95% CIs; floors dashed"),
        "cost": (f"Scatter plots of {rest} against inference speed and against parameter count, with the Pareto "
                 f"front", f"{rest} against cost, with the Pareto front"),
        "curves": ("Line plots of training loss and validation metric by epoch for every cell",
                   "training curves"),
        "pairs": (f"Significance map of every pair of variants on {rest}: better, worse or no verdict",
                  f"all-pairs recipe verdicts on {rest}"),
        "ranks": (f"Blob plot of the bootstrap ranks of each variant on {rest}: disc area is the share of "
                  f"replicates at that rank, the dot the median rank, the line the 95% rank interval",
                  f"bootstrap ranks on {rest}"),
        "qualitative": (f"Test images of {rest} with their ground truth masks and each model's prediction",
                        f"predictions on {rest}"),
    }
    return texts.get(kind, (f"Plot {name}", name))


def _compact_png(data: bytes) -> bytes:
    """The PNG with at most 256 colours (a plot has few; the page stays small enough to mail), or as it was when
    that is not smaller or Pillow cannot read it."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError):
        return data
    return buffer.getvalue() if buffer.tell() < len(data) else data


def _figure(name: str, path: Path, main: str) -> Figure:
    data = _compact_png(path.read_bytes())
    width, height = struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else (0, 0)
    alt, caption = _alt(name, main)
    return Figure(name, alt, caption, "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                  width, height)


def sample_datasets(samples: str | Sequence[str] | None) -> frozenset[str] | None:
    """The datasets a page may show test images of: ``None``/``"all"`` every one (``None``), ``"none"`` none, else
    the named ones (names, or one comma-separated string)."""
    if samples is None or samples == "all":
        return None
    if isinstance(samples, str):
        samples = [] if samples == "none" else [s.strip() for s in samples.split(",") if s.strip()]
    return frozenset(samples)


def _dataset_figures(folder: Folder, dataset: str, main: str, samples: Collection[str] | None = None
                     ) -> list[Figure]:
    """Its verdict plots and, where ``samples`` allows (``None``: every dataset), the grid of its test images."""
    kinds = ("ranks", "pairs", "qualitative") if samples is None or dataset in samples else ("ranks", "pairs")
    names = [f"{kind}_{dataset}" for kind in kinds]
    return [_figure(n, folder.plots[n], main) for n in names if n in folder.plots]


# --- sections -------------------------------------------------------------------------------------------------

def _part(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return frame[frame["dataset"] == dataset] if "dataset" in frame.columns else frame.iloc[0:0]


def _separation(separation: pd.DataFrame, dataset: str) -> str:
    row = _part(separation, dataset)
    if row.empty or "verdict" not in row.columns or pd.isna(row["verdict"].iloc[0]):
        return ""
    r = row.iloc[0]
    agreement = (f" Bootstrap rankings agree with the point ranking at Kendall's tau {r['kendall_tau']:.2f}; "
                 f"{r['share_identical']:.1%} of them are identical.") if not pd.isna(r["kendall_tau"]) else ""
    return f"{r['verdict'][0].upper()}{r['verdict'][1:]}.".replace("`", "") + agreement


def _cell_links(records: Sequence[CellRecord], dataset: str) -> dict[str, list[tuple[str, str]]]:
    links: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        if r.dataset == dataset:
            label = f"s{r.seed}" + ("" if r.status == "ok" else f" ({r.status})")
            links.setdefault(r.variant, []).append((label, r.cell_id))
    return links


def _plain(markdown: str) -> str:
    """A leaderboard.md line as page text: its bold and code marks dropped (the page escapes, not renders, them)."""
    return markdown.replace("**", "").replace("`", "")


def dataset_view(folder: Folder, dataset: str, main: str, metrics: Sequence[str],
                 samples: Collection[str] | None = None) -> DatasetView:
    """One dataset's tab: its tables in reading order, the separation line, notes and plots."""
    t = folder.tables
    board = _part(t["leaderboard"], dataset)
    comparison = _part(t["comparison"], dataset)
    if "metric" in comparison.columns:
        comparison = comparison[comparison["metric"] == main]
    view = DatasetView(dataset, f"d-{pt.slug(dataset)}", separation=_separation(t["separation"], dataset),
                       figures=_dataset_figures(folder, dataset, main, samples))
    tables = [pt.leaderboard_table(board, dataset, main, _cell_links(folder.records, dataset)),
              pt.advice_table(_part(t["advice"], dataset), dataset), pt.metrics_table(board, dataset, main, metrics),
              pt.per_class_table(board, dataset, main), pt.comparison_table(comparison, dataset, "recipe"),
              pt.comparison_table(comparison, dataset, "model"), pt.pairs_table(_part(t["pairs"], dataset), dataset)]
    view.tables = [table for table in tables if table is not None]
    if "model" in board.columns and not (board["model"] == "floor").any():
        view.notes.append("No floors for this dataset (they need its test masks: 'zoo --data-dir DIR leaderboard').")
    recipe = recipe_line(folder.plan, t["runs"], dataset)
    if recipe:
        view.notes.insert(0, _plain(recipe))
    caveat = timing_caveat(t["runs"], dataset) if "dataset" in t["runs"].columns else None
    if caveat:
        view.notes.append(_plain(caveat))
    failed = int(board["n_failed"].fillna(0).sum()) if "n_failed" in board.columns else 0
    if failed:
        view.notes.append(f"{failed} cell(s) did not finish; see the cells tab for their errors.")
    return view


def _main_metric(folder: Folder, metric: str | None) -> str:
    if metric:
        return metric
    for name in ("comparison", "separation"):
        frame = folder.tables[name]
        if "metric" in frame.columns and frame["metric"].notna().any():
            return str(frame["metric"].dropna().iloc[0])
    order = metric_order(folder.records)
    return order[0] if order else "dice"


def _variants(board: pd.DataFrame, overall: pd.DataFrame) -> list[str]:
    """Every variant, in overall order when there is one."""
    seen = [str(v) for v in overall.get("variant", [])]
    models = board[board["model"] != "floor"] if "model" in board.columns else board
    return seen + sorted({str(v) for v in models.get("variant", [])} - set(seen))


def page_context(folder: Folder, *, metric: str | None = None, samples: Collection[str] | None = None
                 ) -> dict[str, Any]:
    """Everything the template needs; ``samples``: the datasets whose test images the page may show (``None``:
    all; a published page leaves out data whose licence does not allow sharing its images)."""
    main = _main_metric(folder, metric)
    metrics = [m for m in metric_order(folder.records) if "/" not in m] or [main]
    board, overall, runs = folder.tables["leaderboard"], folder.tables["overall"], folder.tables["runs"]
    datasets = sorted({str(d) for d in board.get("dataset", [])})
    sep = folder.tables["separation"]
    idle = sorted(sep.loc[sep["pairs_separated"] == 0, "dataset"]) if "pairs_separated" in sep.columns else []
    overall_figures = [_figure(n, p, main) for n, p in folder.plots.items()
                       if not n.startswith(tuple(f"{k}_" for k in ("ranks", "pairs", "qualitative")))]
    cells: list[CellView] = [cell_view(r, main, metrics) for r in folder.records]
    return {"header": header(folder), "main": main, "per_image": PER_IMAGE,
            "variants": _variants(board, overall),
            "datasets": [dataset_view(folder, d, main, metrics, samples) for d in datasets],
            "overall": pt.overall_table(overall, main, idle) if len(datasets) > 1 else None,
            "overall_figures": overall_figures, "idle": idle,
            "cells_table": pt.cells_table(runs, main, {c.cell_id for c in cells}) if len(runs) else None,
            "cells": cells}


# --- rendering ------------------------------------------------------------------------------------------------

def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("zoo.bench", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["slug"] = pt.slug
    return env


def render_report(folder: str | Path, *, metric: str | None = None, sources: Sequence[str | Path] = (),
                  samples: Collection[str] | None = None) -> str:
    """The page of a benchmark folder as HTML text (see the module docstring).

    Args:
        folder: a folder written by ``zoo bench`` / ``zoo leaderboard``.
        metric: the main metric (default: the one the comparisons were computed on).
        sources: the folders holding the cell records (the shards ``zoo leaderboard`` merged into ``folder``;
            default: ``folder``). Cells without a record get no detail view.
        samples: the datasets whose qualitative grid (test images, masks, predictions) the page embeds
            (default: every one that has a grid).
    """
    from markupsafe import Markup

    context = page_context(load_folder(folder, sources), metric=metric, samples=samples)
    assets = resources.files("zoo.bench") / "templates"
    context["css"] = Markup((assets / "report.css").read_text(encoding="utf-8"))
    context["js"] = Markup((assets / "report.js").read_text(encoding="utf-8"))
    return _environment().get_template("report.html.j2").render(**context)


def write_report(folder: str | Path, out: str | Path | None = None, *, metric: str | None = None,
                 sources: Sequence[str | Path] = (), samples: Collection[str] | None = None) -> Path:
    """Write the page of ``folder`` to ``out`` (default ``folder/report.html``) and return its path
    (arguments as :func:`render_report`)."""
    path = Path(out) if out else Path(folder) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_report(folder, metric=metric, sources=sources, samples=samples))
    return path
