"""Where the wall time of the default benchmark goes, and the share of it that is training.

Runs ``zoo bench --models unet,unet-attn`` (shapes, default profile, 6 cells) in a subprocess with the phase
timers of ``benchmarks/phases/sitecustomize.py`` in every process, then splits the whole-process wall time into:
the harness's start and imports (spawn to ``zoo.cli.main``), harness setup (arguments, planning, the folder), each
cell's process start, imports and exit (the harness's wait beyond the cell's own ``execute_cell``), cell setup
(registry, dataset, model, loaders), training steps, validation, test scoring, costs (GMACs, inference latency
and throughput, sample predictions), writing (checkpoints, logs, records, ``runs.csv``) and tables and plots.
The measured figure is the training share: the cells' recorded ``train_seconds`` over the wall time (the
``train_seconds`` of a record are its training epochs without validation; the ``training steps`` phase is the
whole loop, data loading included). Target: >= 70% (issue 21; 43-49% with a fresh interpreter per cell).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ORDER = ("harness start, imports", "harness", "cell start, imports, exit", "cell setup", "training steps",
         "validation", "test scoring", "costs (GMACs, latency, samples)", "writing", "tables and plots")


def breakdown(folder: Path, spawned: float, wall: float) -> dict[str, float]:
    """Seconds per phase from the processes' JSON files; ``other`` is the wall time no timer saw."""
    totals: dict[str, float] = {}
    cells: list[list[float]] = []
    launches: list[list[float]] = []
    main_start = None
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        for phase, seconds in data["totals"].items():
            totals[phase] = totals.get(phase, 0.0) + seconds
        cells += data["spans"].get("execute_cell", [])
        launches += data["spans"].get("launch_cell", [])
        if data["spans"].get("main"):
            main_start = data["spans"]["main"][0][0]
    totals["harness start, imports"] = (main_start - spawned) if main_start else 0.0
    # the harness's wait for a cell, less the cell's own span: its process start, imports and exit
    totals["cell start, imports, exit"] = sum(b - a for a, b in launches) - sum(b - a for a, b in cells)
    totals["other"] = wall - sum(totals.values())
    return totals


def test_default_bench_breakdown(tmp_path, report):
    out, phases = tmp_path / "bench", tmp_path / "phases"
    phases.mkdir()
    env = {**os.environ, "ZOO_NO_ALLOCATOR_HINT": "1", "ZOO_PHASES_DIR": str(phases),
           "PYTHONPATH": os.pathsep.join([str(HERE / "phases"), str(HERE.parent), str(HERE.parent / "plugins")])}
    command = [sys.executable, "-m", "zoo", "bench", "--models", "unet,unet-attn", "--out", str(out)]
    spawned = time.time()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "ok").all()
    train = float(runs["train_seconds"].sum())
    seconds = breakdown(phases, spawned, wall)
    parts = "; ".join(f"{name} {seconds.get(name, 0.0):.1f} s ({seconds.get(name, 0.0) / wall:.0%})"
                      for name in (*ORDER, "other"))
    report("bench/breakdown", "training share of `zoo bench --models unet,unet-attn` wall time (recorded "
           f"train_seconds / whole-process wall, {len(runs)} cells), and where the rest goes", 100 * train / wall,
           unit="%", target=">= 70",
           note=f"wall {wall:.1f} s, train_seconds {train:.1f} s; {parts}; cells forked from a warm server")
