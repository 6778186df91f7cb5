"""``zoo bench``: train and score models x datasets x seeds, each cell in its own process (and ``bench-cell``)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from zoo import api
from zoo.commands._recipe import add_recipe_flags, recipe_layer

log = logging.getLogger(__name__)

_EPILOG = """\
exit status: 0 only when every cell of the grid (or of this shard) has an 'ok' record; 1 when any cell
failed, diverged, ran out of memory, timed out, or was left to another process holding its lock; 2 for bad
usage (unknown model, bad option).

Each finished cell is saved as its own record at once, so an interrupted bench loses at most the cell in
flight: run the same command again to skip finished cells and resume that one from its last checkpoint.
Once a cell is recorded its folder cells/<cell_id>/ keeps cell.json, record.json, per_image.csv,
samples.npz, cell.log and run/ (config.json, log.jsonl, result.json, test metrics, and best.safetensors: the
weights selected on val with their metadata). The resumable training state (run/last.safetensors, last.pt:
weights, optimizer, scheduler, RNG) is deleted unless --keep-checkpoints; a cell that timed out keeps it so
--rerun-failed continues it. Score a cell's model with 'zoo eval --checkpoint DIR/cells/<cell_id>/run' (or
'zoo predict --checkpoint' the same folder).

Outputs (runs.csv, per_image.csv, leaderboard.csv, leaderboard.md, plots/) are regenerated from the records;
'zoo leaderboard DIR [DIR...]' re-renders them (and merges shards) without training.

profiles:
""" + "\n".join(f"  {p.name:<8} {p.description}" for p in api.PROFILES.values())


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench", parents=[common], help="benchmark models on datasets (train, select on val, score on test)",
        description="Train every model on every dataset for every seed (and every value of the config file's "
                    "option axes) with one shared recipe, select on val, score on test, and write comparison "
                    "tables and plots.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", metavar="A,B", help="models (names or wildcards, e.g. 'unet*'); the first is the "
                                                   "baseline of the paired comparison")
    p.add_argument("--datasets", metavar="X,Y", help=f"datasets (default: {','.join(api.DEFAULT_DATASETS)})")
    p.add_argument("--seeds", metavar="0,1,2", help="seeds (default: the profile's)")
    p.add_argument("--config", metavar="TOML", help="benchmark config file: models, datasets, seeds, profile, "
                                                    "[train], [model], [dataset], [axes] (see README)")
    p.add_argument("--profile", choices=sorted(api.PROFILES), help="budget profile (default: default)")
    add_recipe_flags(p, default_note="the profile's")
    p.add_argument("--plan", choices=("auto", "none"),
                   help="auto: derive each dataset's recipe from its data (native-scale patches, native-resolution "
                        "scoring, the same training compute for every model; see 'zoo plan'); none: the "
                        "profile's resize recipe (default: the profile's choice)")
    p.add_argument("--budget", metavar="B", help="training budget of a planned cell: '135 tflops', '2000 steps', "
                                                 "'20 epochs' or '10 min' (default: the profile's)")
    p.add_argument("--name", help="benchmark name (default: derived from datasets and models)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: results/NAME)")
    p.add_argument("--cell-timeout", type=float, metavar="S", help="kill a cell after S seconds (status timeout)")
    p.add_argument("--shard", metavar="I/N", help="run only every N-th cell starting at the I-th (1-based)")
    p.add_argument("--rerun-failed", action="store_true", help="rerun cells recorded as failed, diverged, oom or "
                                                               "timeout")
    p.add_argument("--force", action="store_true", help="rerun every cell from scratch")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads per cell (OMP_NUM_THREADS); 1 is much "
                                                             "faster than the default when other jobs share the cores")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="run N cells at a time: one per local GPU (CUDA_VISIBLE_DEVICES), or on the CPU each "
                        "with cores/N threads (see docs/scaling.md for this vs torchrun per cell)")
    p.add_argument("--executor", choices=api.EXECUTORS, default="local",
                   help="local: cells as subprocesses of this process (default); ray: each cell a Ray task, "
                        "placed on any node of a Ray cluster, no shared filesystem (pip install 'segzoo[ray]'; "
                        "see docs/scaling.md)")
    p.add_argument("--ray-address", metavar="ADDR", help="with --executor ray: the cluster to join ('auto', "
                                                         "'ray://HOST:10001'; default: start a local Ray)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep-checkpoints", dest="keep_checkpoints", action="store_const", const="all",
                      default="best", help="keep each recorded cell's full training state (last.safetensors, "
                                           "last.pt) next to its best weights (default: best weights only)")
    keep.add_argument("--drop-weights", dest="keep_checkpoints", action="store_const", const="none",
                      help="delete even the best weights once a cell is recorded (tables and plots only)")
    p.add_argument("--dry-run", action="store_true", help="print each dataset's plan and the cells, and exit")
    p.set_defaults(run=run)

    cell = sub.add_parser("bench-cell", parents=[common])  # internal: one cell, in its own process (no help line)
    cell.add_argument("directory")
    cell.add_argument("--resume", action="store_true")
    cell.set_defaults(run=run_cell)


def _progress(index: int, total: int, cell: Any, record: Any) -> None:
    if record is None:
        log.info("[%d/%d] %s ...", index, total, cell.cell_id)
        return
    metric = str(cell.config.get("select_metric", "dice"))
    score = record.metrics.get(metric)
    detail = f"{metric}={score:.4f}" if isinstance(score, float) else (record.error or "")
    log.info("[%d/%d] %s: %s in %.1f s %s", index, total, cell.cell_id, record.status, record.wall_seconds or 0.0,
             detail)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    # the local executor first: its cell fork server then imports torch while the grid is planned
    warm = not args.dry_run and args.executor == "local"
    executor = api.bench_executor(threads=args.threads) if warm else None
    try:
        plan = api.bench_plan(models=args.models, datasets=args.datasets, seeds=args.seeds, profile=args.profile,
                              config=args.config, recipe=recipe_layer(args), name=args.name,
                              cell_timeout=args.cell_timeout, plan=args.plan, budget=args.budget)
        out = api.bench_out(plan, args.out)
        if args.dry_run:
            _print_dry_run(plan, args.shard)
            return 0
        summary = api.bench(plan, out, shard=args.shard, rerun_failed=args.rerun_failed, force=args.force,
                            threads=args.threads, devices=args.devices, keep_checkpoints=args.keep_checkpoints,
                            on_cell=_progress, command=("zoo", *getattr(args, "argv", ())),
                            executor=executor or args.executor, ray_address=args.ray_address)
    finally:
        if executor is not None:
            executor.close()  # bench closed it already; not when planning failed
    counts: dict[str, int] = {}
    for row in summary.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    busy = f", {len(summary.busy)} held by another process" if summary.busy else ""
    print(f"{len(summary.rows)} cells ({status}{busy}; {len(summary.ran)} run now, {len(summary.skipped)} "
          f"already recorded) -> {out}")
    print(f"leaderboard: {out / 'leaderboard.md'}")
    return 0 if summary.ok else 1


def _print_dry_run(plan: Any, shard: str | None) -> None:
    """Each dataset's plan (when planned), then one line per cell: id, hash, steps and training compute."""
    for dataset, dp in plan.dataset_plans.items():
        print(api.format_plan(dp.plan))
        if dp.set_options:
            print(f"  dataset options set by the plan: {dp.set_options}")
        print()
    for cell in api.select_shard(plan.cells, api.parse_shard(shard) if shard else None):
        budget = (cell.plan or {}).get("budget") or {}
        cost = (f"  {budget['steps']} steps x {budget['batch_size']}, {budget['tflops']:.3g} TFLOPs"
                if budget else "")
        overrides = (cell.plan or {}).get("overrides")
        print(f"{cell.cell_id}  {cell.config_hash}{cost}" + (f"  overrides: {', '.join(overrides)}" if overrides
                                                              else ""))


def run_cell(args: argparse.Namespace, options: dict[str, Any]) -> int:
    return api.bench_cell(args.directory, resume=args.resume)
