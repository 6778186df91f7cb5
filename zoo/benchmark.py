"""The benchmark harness: a grid of cells -> one record per cell -> ``BenchmarkRow`` -> CSVs, Markdown, plots.

:func:`run_benchmark` runs the cells of a :class:`~zoo.bench.grid.BenchPlan` (or one shard of it), each in its
own process, skipping cells already recorded and resuming an interrupted one; :func:`write_leaderboard`
regenerates every table and plot from the records of one or more output directories (``zoo leaderboard``).

Output directory::

    plan.json         what was asked (models, datasets, seeds, profile, recipe, axes)
    cells/            one folder per cell (see ``zoo.bench.records``), the only thing written while running;
                      a recorded cell keeps its best weights, not its resumable training state (``keep_checkpoints``)
    runs.csv          one row per cell (columns: ``zoo.bench.records.BenchmarkRow``)
    per_image.csv     cell_id, dataset, model, variant, seed, image_id, metric, value
    leaderboard.csv   per dataset and variant: seeds, mean/std/95% CI of every metric, costs, rank
    leaderboard_overall.csv   variants by mean rank across datasets
    comparison.csv    paired Wilcoxon tests against the baseline (first) model
    leaderboard.md    the tables in Markdown
    plots/            bar_<metric>.png, cost_<metric>.png, curves.png, qualitative_<dataset>.png
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import math
import os
import queue
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.bench.cell import launch_cell
from zoo.bench.grid import BenchPlan, Cell, expand_grid, select_shard
from zoo.fileio import atomic_write_text
from zoo.bench.records import (KEEP_CHECKPOINTS, BenchmarkRow, CellLock, cell_dir,
                               prune_checkpoints, read_json, read_records, row_dict, run_columns, write_json)
from zoo.errors import OptionError, check_choice

if TYPE_CHECKING:
    import pandas as pd

    from zoo.registry import Registries

__all__ = ["BenchmarkRow", "BenchSummary", "run_benchmark", "device_slots", "records_to_rows", "write_runs_csv",
           "write_leaderboard", "load_tables", "DEFAULT_RESULTS_DIR"]

log = logging.getLogger(__name__)
DEFAULT_RESULTS_DIR = Path("results")
_RETRY_FRESH = ("failed", "diverged", "oom")  # rerun from scratch; a timeout resumes from its checkpoint


@dataclass
class BenchSummary:
    """What :func:`run_benchmark` did: the records of this shard's cells and the cells it could not run."""

    out: Path
    rows: list[BenchmarkRow] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # locked by another live process

    @property
    def ok(self) -> bool:
        """True when every cell of the shard has an ``ok`` record."""
        return not self.busy and all(row.status == "ok" for row in self.rows)


def _check_recipes(cells: Sequence[Cell], out: Path, force: bool) -> None:
    """Refuse to mix recipes in one output directory (the comparison would no longer be fair)."""
    if force:
        return
    for cell in cells:
        saved = read_json(cell_dir(out, cell.cell_id) / "cell.json")
        if saved is not None and saved.get("config_hash") != cell.config_hash:
            raise OptionError(
                f"{out} already holds cell {cell.cell_id!r} with a different recipe (config hash "
                f"{saved.get('config_hash')} vs {cell.config_hash}); use another --out, or --force to redo it"
            )


def _clear_outputs(directory: Path, *, keep_run: bool) -> None:
    for name in ("record.json", "per_image.csv", "samples.npz"):
        (directory / name).unlink(missing_ok=True)
    if not keep_run:
        shutil.rmtree(directory / "run", ignore_errors=True)


def device_slots(devices: int, plan_device: str | None) -> list[dict[str, str]]:
    """The environment of each of ``devices`` concurrent cell slots.

    With that many CUDA GPUs (and a plan not pinned to the CPU) slot ``i`` sees only GPU ``i``
    (``CUDA_VISIBLE_DEVICES``); otherwise the slots share the CPU, each with ``cores // devices`` threads.
    """
    if devices < 1:
        raise OptionError(f"--devices {devices} must be >= 1")
    if devices == 1:
        return [{}]
    device = str(plan_device or "auto")
    if not device.startswith(("cpu", "mps")):
        import torch

        if torch.cuda.device_count() >= devices:
            return [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(devices)]
        if device.startswith("cuda"):
            raise OptionError(f"--devices {devices} but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    threads = str(max(1, (os.cpu_count() or 1) // devices))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(devices)]


def run_benchmark(plan: BenchPlan, out: str | Path, *, shard: tuple[int, int] | None = None,
                  rerun_failed: bool = False, force: bool = False, registries: Registries | None = None,
                  env: Mapping[str, str] | None = None, render: bool = True, devices: int = 1,
                  keep_checkpoints: str = "best",
                  on_cell: Callable[[int, int, Cell, Mapping[str, Any] | None], None] | None = None
                  ) -> BenchSummary:
    """Run every cell of ``plan`` (or of one shard) that has no record yet, each in its own process.

    Args:
        out: the output directory (created).
        shard: ``(I, N)``: run only every N-th cell starting at the I-th (1-based).
        rerun_failed: also rerun cells recorded as failed, diverged, oom or timeout.
        force: rerun every cell from scratch (and accept a changed recipe).
        env: environment for the cell processes (default: this process's).
        render: regenerate all tables and plots at the end (``runs.csv`` is rewritten after every cell).
        devices: run this many cells at a time, one per local GPU or, on the CPU, each on its share of the
            cores (:func:`device_slots`). Records do not depend on it: it only changes the wall time.
        keep_checkpoints: what each cell run now keeps of its checkpoints once it is recorded: ``"best"``
            (default) the selected weights only (``run/best.safetensors``, for ``zoo eval``/``zoo predict``),
            ``"all"`` also the resumable training state (``run/last.*``), ``"none"`` no weights at all. A cell
            recorded as ``timeout`` keeps its state either way, so ``rerun_failed`` continues it
            (:func:`zoo.bench.records.prune_checkpoints`). Cells skipped as already recorded are not touched.
        on_cell: progress callback ``(index, total, cell, record or None)``, called before (None) and after.

    Returns:
        A :class:`BenchSummary`; ``summary.ok`` is the exit status of ``zoo bench``.
    """
    check_choice("checkpoint policy", keep_checkpoints, KEEP_CHECKPOINTS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = select_shard(expand_grid(plan, registries=registries), shard)
    _check_recipes(cells, out, force)
    write_json(out / "plan.json", plan.describe())
    summary = BenchSummary(out=out)
    base_env = dict(env) if env is not None else dict(os.environ)
    slots: queue.Queue[dict[str, str]] = queue.Queue()
    for slot in device_slots(devices, plan.train.get("device")):
        slots.put(slot)
    guard = threading.Lock()  # summary, progress callback and runs.csv are shared by the worker threads
    results: dict[int, BenchmarkRow] = {}

    def run_one(index: int, cell: Cell) -> None:
        directory = cell_dir(out, cell.cell_id)
        record = read_json(directory / "record.json")
        if record is not None and not force and (record.get("status") == "ok" or not rerun_failed):
            with guard:
                summary.skipped.append(cell.cell_id)
                results[index] = BenchmarkRow.from_record(record)
            return
        lock = CellLock(out / "cells" / f"{cell.cell_id}.lock")
        if not lock.acquire():
            log.warning("cell %s is being run by another process (%s); leaving it", cell.cell_id, lock.holder())
            with guard:
                summary.busy.append(cell.cell_id)
            return
        slot = slots.get()
        if env is not None and "OMP_NUM_THREADS" in env:  # an explicit --threads wins over the even split
            slot = {k: v for k, v in slot.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        try:
            record = read_json(directory / "record.json")  # another process may have finished it meanwhile
            if record is not None and not force and (record.get("status") == "ok" or not rerun_failed):
                with guard:
                    summary.skipped.append(cell.cell_id)
                    results[index] = BenchmarkRow.from_record(record)
                return
            fresh = force or (record is not None and record.get("status") in _RETRY_FRESH)
            _clear_outputs(directory, keep_run=not fresh)
            resume = (directory / "run").is_dir()
            write_json(directory / "cell.json", {**cell.to_json(), "profile": plan.profile})
            if on_cell is not None:
                with guard:
                    on_cell(index, len(cells), cell, None)
            record = launch_cell(cell, directory, resume=resume, timeout=plan.cell_timeout, lock=lock,
                                 profile=plan.profile, env={**base_env, **slot} if slot or env is not None else None)
            # only now, with the record safely written: before it, the state is what resumes an interrupted cell
            prune_checkpoints(directory, keep_checkpoints, status=record.get("status"))
        finally:
            slots.put(slot)
            lock.release()
        with guard:
            summary.ran.append(cell.cell_id)
            results[index] = BenchmarkRow.from_record(record)
            if on_cell is not None:
                on_cell(index, len(cells), cell, record)
            write_runs_csv(read_records([out]), out / "runs.csv")

    if devices == 1:
        for index, cell in enumerate(cells, 1):
            run_one(index, cell)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=devices) as pool:
            for future in [pool.submit(run_one, index, cell) for index, cell in enumerate(cells, 1)]:
                future.result()
    summary.rows = [results[i] for i in sorted(results)]
    if render:
        write_leaderboard([out], out, baseline=plan.models[0] if plan.models else None)
    return summary


# ----------------------------------------------------------------------------------------------------------------
# Tables


def records_to_rows(records: Sequence[Mapping[str, Any]]) -> list[BenchmarkRow]:
    return [BenchmarkRow.from_record(r) for r in records]


def _metric_order(records: Sequence[Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    for record in records:
        metrics = (record.get("config") or {}).get("metrics") or []
        select = str((record.get("config") or {}).get("select_metric", "dice")).split("/")[0]
        for name in [select, *metrics, *(record.get("higher_is_better") or {})]:
            if name not in order:
                order.append(name)
    return order


def _csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _runs_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    rows = records_to_rows(records)
    columns = run_columns(rows, _metric_order(records))
    return pd.DataFrame([row_dict(r) for r in rows], columns=columns)


def write_runs_csv(records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write ``runs.csv`` (one row per record, fixed column order) atomically."""
    atomic_write_text(path, _csv_text(_runs_frame(records)))
    return path


def _per_image_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for record in records:
        path = Path(record["_dir"]) / "per_image.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path, dtype={"image_id": str})
        frame.insert(0, "cell_id", record["cell_id"])
        for i, key in enumerate(("dataset", "model", "variant", "seed"), 1):
            frame.insert(i, key, record[key])
        frames.append(frame)
    columns = ["cell_id", "dataset", "model", "variant", "seed", "image_id", "metric", "value"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def load_tables(out_dirs: Sequence[str | Path]) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """The records of ``out_dirs`` (merged), and their ``runs`` and ``per_image`` tables."""
    records = read_records([Path(d) for d in out_dirs])
    return records, _runs_frame(records), _per_image_frame(records)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(board: pd.DataFrame, overall: pd.DataFrame, comparison: pd.DataFrame, runs: pd.DataFrame,
              main: str, plan: Mapping[str, Any] | None) -> str:
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
        parts += [f"## {dataset}", "", _markdown_table(
            ["rank", "variant", "ok seeds", f"{main} mean", "std", "95% CI", f"{main} pooled", "params (M)",
             "GMACs", "train s", "infer img/s", "peak MB"], rows), ""]
    if not overall.empty and overall["variant"].nunique() > 0 and board["dataset"].nunique() > 1:
        rank_cols = [c for c in overall.columns if c.startswith("rank/")]
        rows = [[r["overall_rank"], r["variant"], _fmt(r["mean_rank"], 2), *(_fmt(r[c], 0) for c in rank_cols)]
                for _, r in overall.iterrows()]
        parts += ["## Overall (mean rank across datasets)", "",
                  _markdown_table(["rank", "variant", "mean rank", *rank_cols], rows), ""]
    if not comparison.empty:
        rows = [[r["dataset"], r["variant"], r["baseline"], r["n_pairs"], _fmt(r["mean_difference"], 4),
                 _fmt(r["p_value"], 4), "yes" if r["significant_0.05"] else "no"] for _, r in comparison.iterrows()]
        parts += [f"## Paired comparison against the baseline (`{main}`, Wilcoxon signed-rank)", "",
                  _markdown_table(["dataset", "variant", "baseline", "pairs", "mean difference", "p-value",
                                   "p < 0.05"], rows), ""]
    bad = runs[runs["status"] != "ok"] if "status" in runs.columns else runs.iloc[0:0]
    if not bad.empty:
        rows = [[r["cell_id"], r["status"], str(r.get("error") or "")[:160]] for _, r in bad.iterrows()]
        parts += ["## Cells that did not finish", "", _markdown_table(["cell", "status", "error"], rows), ""]
    return "\n".join(parts)


def write_leaderboard(out_dirs: Sequence[str | Path], dest: str | Path, *, baseline: str | None = None,
                      metric: str | None = None, plots: bool = True) -> dict[str, Path]:
    """Regenerate every table and plot in ``dest`` from the records under ``out_dirs`` (shards are merged).

    Args:
        baseline: the model of the paired comparison (default: the first model in the first ``plan.json``).
        metric: the main metric column (default: the recipe's ``select_metric``, usually ``dice``).
        plots: also draw the PNGs.

    Returns:
        Output name -> path.
    """
    from zoo.bench import leaderboard as lb

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    records, runs, per_image = load_tables(out_dirs)
    plan = next((p for p in (read_json(Path(d) / "plan.json") for d in out_dirs) if p), None)
    order = _metric_order(records)
    main = metric or (order[0] if order else "dice")
    higher: dict[str, bool] = {}
    for record in records:
        higher.update(record.get("higher_is_better") or {})
    if baseline is None:
        baseline = (plan or {}).get("models", [None])[0] if plan else None
    axes = sorted({a for r in records for a in (r.get("axes") or {})})
    board = lb.leaderboard_table(runs, per_image, metric_names=order, main_metric=main, higher_is_better=higher)
    overall = lb.overall_table(board, main_metric=main)
    comparison = lb.paired_comparison(runs, per_image, baseline=baseline or "", metric=main, axes=axes)
    written = {"runs": dest / "runs.csv", "per_image": dest / "per_image.csv", "leaderboard": dest / "leaderboard.csv",
               "overall": dest / "leaderboard_overall.csv", "comparison": dest / "comparison.csv",
               "markdown": dest / "leaderboard.md"}
    atomic_write_text(written["runs"], _csv_text(runs))
    atomic_write_text(written["per_image"], _csv_text(per_image))
    atomic_write_text(written["leaderboard"], _csv_text(board))
    atomic_write_text(written["overall"], _csv_text(overall))
    atomic_write_text(written["comparison"], _csv_text(comparison))
    atomic_write_text(written["markdown"], _markdown(board, overall, comparison, runs, main, plan))
    if plots:
        written.update(_write_plots(records, board, main, dest / "plots"))
    return written


def _write_plots(records: Sequence[Mapping[str, Any]], board: pd.DataFrame, main: str, folder: Path
                 ) -> dict[str, Path]:
    import numpy as np

    from zoo.bench import plots

    out: dict[str, Path] = {}
    folder.mkdir(parents=True, exist_ok=True)
    safe = main.replace("/", "_")
    for key, path in (("bar", plots.bar_chart(board, main, folder / f"bar_{safe}.png")),
                      ("cost", plots.cost_scatter(board, main, folder / f"cost_{safe}.png")),
                      ("curves", plots.training_curves(records, folder / "curves.png", val_metric=main))):
        if path is not None:
            out[key] = path
    ok = [r for r in records if r.get("status") == "ok"]
    for dataset in sorted({r["dataset"] for r in ok}):
        samples: dict[str, Any] = {}
        n_classes = None
        for record in sorted((r for r in ok if r["dataset"] == dataset), key=lambda r: r["seed"]):
            path = Path(record["_dir"]) / "samples.npz"
            if record["variant"] in samples or not path.exists():
                continue
            with np.load(path) as data:
                samples[record["variant"]] = {k: data[k] for k in data.files}
            n_classes = len(record.get("class_names") or []) or n_classes
        path = plots.qualitative_grid(samples, dataset, folder / f"qualitative_{dataset}.png", n_classes=n_classes)
        if path is not None:
            out[f"qualitative_{dataset}"] = path
    return out
