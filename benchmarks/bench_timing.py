"""Side-by-side wall time of ``zoo bench`` for two checkouts of the code, run alternately (A B A B ...).

Usage::

    git -C . archive 97d71b9 | tar -x -C /work/base          # the code before (not a worktree)
    python benchmarks/bench_timing.py --base /work/base --runs 4

Each run is ``PYTHONPATH=CHECKOUT:CHECKOUT/plugins python -m zoo bench --models unet,unet-attn --out FRESH`` in a
subprocess, timed whole (process start to exit) with ``time.perf_counter``; every cell must end ``ok``. The
training share of a run is the sum of its cells' recorded ``train_seconds`` over its wall time. Alternating
spreads background load over both sides; the figure is the median of the per-round ratios (new / base), with
their min and max. ``--row`` also writes it as the ``bench/wall-vs-before`` row of the speed table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def run_once(checkout: Path, models: str, out: Path) -> dict[str, float]:
    """One whole ``zoo bench`` of ``checkout``: wall seconds, summed training seconds, cells."""
    env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout / 'plugins'}", "ZOO_NO_ALLOCATOR_HINT": "1"}
    command = [sys.executable, "-m", "zoo", "bench", "--models", models, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=checkout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: zoo bench failed:\n{done.stderr[-3000:]}")
    runs = pd.read_csv(out / "runs.csv")
    if not (runs["status"] == "ok").all():
        raise SystemExit(f"{checkout}: not every cell is ok: {runs['status'].tolist()}")
    train = float(runs["train_seconds"].sum())
    return {"wall": wall, "train": train, "share": train / wall, "cells": len(runs),
            "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the code before")
    parser.add_argument("--new", type=Path, default=HERE.parent, help="checkout of the code after (this one)")
    parser.add_argument("--runs", type=int, default=4, help="runs of each, alternating")
    parser.add_argument("--models", default="unet,unet-attn")
    parser.add_argument("--row", action="store_true", help="write the bench/wall-vs-before row")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for side in ("base", "new"):
                result = run_once(getattr(args, side).resolve(), args.models, Path(tmp) / f"{side}{i}")
                results[side].append(result)
                print(f"round {i + 1} {side}: {result['wall']:.1f} s wall, train {result['train']:.1f} s "
                      f"({result['share']:.0%}), load {result['load']:.2f}", flush=True)
    ratios = [n["wall"] / b["wall"] for b, n in zip(results["base"], results["new"])]
    summary = {
        "command": f"python -m zoo bench --models {args.models} --out FRESH",
        "cpu": f"{cpu_name()} ({os.cpu_count()} cores)",
        "load_before": load_before, "load_after": os.getloadavg(),
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        **{f"{side}_wall_median": statistics.median(r["wall"] for r in rs) for side, rs in results.items()},
        **{f"{side}_share_median": statistics.median(r["share"] for r in rs) for side, rs in results.items()},
        "runs": results,
    }
    print(json.dumps(summary, indent=1))
    if args.row:
        _write_row(summary, args.runs)
    return 0


def _write_row(s: dict, runs: int) -> None:
    sys.path.insert(0, str(HERE))
    import conftest

    conftest._ROWS.append(conftest.Row(
        id="bench/wall-vs-before", what="`zoo bench --models unet,unet-attn` whole-process wall time, this code vs "
        "97d71b9 (fresh interpreter per cell), alternating", measured=s["ratio_median"], target="<= 0.667",
        load=round(s["load_before"][0], 2),
        note=f"median of {runs} alternating pairs (min {s['ratio_min']:.2f}, max {s['ratio_max']:.2f}); "
             f"{s['new_wall_median']:.1f} vs {s['base_wall_median']:.1f} s; training share "
             f"{s['new_share_median']:.0%} vs {s['base_share_median']:.0%}; {s['cpu']}; load "
             f"{s['load_before'][0]:.2f} before, {s['load_after'][0]:.2f} after; benchmarks/bench_timing.py"))
    conftest._flush()


if __name__ == "__main__":
    sys.exit(main())
