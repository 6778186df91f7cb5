"""Wall time of the default benchmark: ``zoo bench --models unet,unet-attn`` (shapes, default profile, 3 seeds).

Runs the real command in a subprocess into a temporary folder (each cell in its own process, as users run it)
and reports the wall time and the resulting test Dice per model (mean over seeds). Target: <= 120 s on 2 cores.
``ZOO_BENCH_THREADS`` is passed on as ``--threads``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd


def test_default_bench_wall_time(tmp_path, report):
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "zoo", "bench", "--models", "unet,unet-attn", "--out", str(out)]
    if os.environ.get("ZOO_BENCH_THREADS"):
        command += ["--threads", os.environ["ZOO_BENCH_THREADS"]]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "ZOO_NO_ALLOCATOR_HINT": "1"})
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "ok").all()
    dice = runs.groupby("model")["dice"].agg(["mean", "std"])
    scores = "; ".join(f"{m} Dice {r['mean']:.3f} +/- {r['std']:.3f}" for m, r in dice.iterrows())
    modes = ",".join(sorted(set(runs["precision_mode"].astype(str))))
    report("bench/default-wall", "`zoo bench --models unet,unet-attn` wall time (shapes, default profile, "
           f"{len(runs)} cells)", wall, unit="s", target="<= 120",
           note=f"{scores} (test, mean +/- std over seeds); precision {modes}; allocator "
                f"{','.join(sorted(set(runs['allocator'].astype(str))))}; train {runs['train_seconds'].sum():.0f} s "
                f"of cell time")
    assert wall <= 400
