"""``zoo train``: train a model on a dataset.

Train MODEL on DATASET: fit on the train split, keep the best checkpoint by a validation metric, then score it on
the test split. Any other --name value is a model option if the model takes it, else a dataset option. Settings from
--config FILE.toml ([train], [model], [dataset] tables) are overridden by the command line. With --plan auto the
recipe is derived from the data (see 'zoo plan'; native-scale patches, native-resolution scoring, --budget turned
into steps) and sits under the config file and the command line; the settings they replace are reported as
overrides. Data-parallel on N processes: torchrun --nproc-per-node N -m zoo train ... (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import api
from zoo.commands._recipe import add_recipe_flags, recipe_layer
from zoo.commands._table import command_doc, format_table

if TYPE_CHECKING:
    from zoo.api import TrainConfig

# the defaults named in --help (TrainConfig's; a test keeps them equal without importing torch here)
TRAIN_DEFAULTS = {"epochs": 25, "image_size": 128, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0,
                  "optimizer": "adam", "schedule": "constant", "augment": "light", "val_every": 1,
                  "select_metric": "dice", "device": "auto", "precision": "auto", "num_workers": 0}


_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("--model", help="registered model name")
    p.add_argument("--dataset", help="registered dataset name")
    p.add_argument("--config", metavar="FILE.toml", help="recipe file: [train] settings, [model], [dataset] options")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATASET-sSEED)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    add_recipe_flags(p, defaults=TRAIN_DEFAULTS)
    p.add_argument("--plan", choices=("auto", "none"), default="none",
                   help="auto: derive the recipe from the data under explicit settings (see 'zoo plan'); "
                        "none: TrainConfig's defaults (default)")
    p.add_argument("--budget", metavar="B", help="with --plan auto: the training budget, '135 tflops', '450 steps', "
                                                 "'20 epochs' or '10 min' (default: the planner's)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--unsafe-load", action="store_true",
                   help="allow a training-state file that torch's weights-only loader refuses (trusted files only)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_train, accepts_options=True)


def build_config(args: argparse.Namespace, options: dict[str, Any]) -> TrainConfig:
    """The recipe from ``--config`` (if any), overridden by the command line."""
    file = api.load_toml(args.config) if args.config else {}
    flags = recipe_layer(args, model=args.model, dataset=args.dataset, seed=args.seed)
    if args.budget and args.plan != "auto":
        raise api.OptionError("--budget needs --plan auto (without a plan, --max-steps or --epochs is the budget)")
    return api.train_config(file=file, flags=flags, options=options, source=args.config or "--config",
                            plan=args.plan, budget=args.budget)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _print_plan_use(config: TrainConfig) -> None:
    """What the plan set, and the explicit settings that replaced planned ones."""
    plan = config.plan or {}
    budget = plan.get("budget") or {}
    patch = "x".join(map(str, config.patch_size or ()))
    spent = (f", {budget['steps']} steps = {budget['tflops']:.3g} TFLOPs of {budget['kind']} budget "
             f"{budget['value']:g}" if budget else "")
    print(f"planned recipe: patch {patch} ({config.sampling}), batch {config.batch_size}, augment {config.augment}, "
          f"loss {config.loss}, eval {'sliding' if config.tiled else 'whole'} at native resolution{spent}")
    if plan.get("overrides"):
        print(f"  overrides of the plan: {', '.join(plan['overrides'])}")


def run_train(args: argparse.Namespace, options: dict[str, Any]) -> int:
    config = build_config(args, options)
    out = Path(args.out or f"runs/{config.model}-{config.dataset}-s{config.seed}")
    if config.plan is not None:
        _print_plan_use(config)
    result = api.train(config, out, resume=args.resume, quiet=args.quiet, unsafe_load=args.unsafe_load)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun only rank 0 reports (every rank has the result)
        return 0 if result.status == "ok" else 1
    print(f"{config.model} on {config.dataset}: {result.status} after {result.epochs_done} epochs "
          f"({result.steps_done} steps, {result.train_seconds:.1f} s, batch {result.batch_size_used}"
          f"{f' = {result.world_size} x {result.batch_size_per_process}' if result.world_size > 1 else ''}, "
          f"{result.device_name})")
    if result.error:
        print(f"  error: {result.error}")
    if result.best_epoch is not None:
        print(f"  best epoch {result.best_epoch}: val {config.select_metric} {_fmt(result.best_score)}")
    if result.test_pooled:
        rows = [(col, _fmt(result.test_pooled.get(col)), _fmt(result.test_mean.get(col)),
                 result.test_nan_count.get(col, 0)) for col in sorted(result.test_pooled)]
        print(format_table(("test metric", "pooled", "per-image mean", "NaN images"), rows))
    print(f"  outputs: {out}/ (log.jsonl, best/last checkpoints, test_per_image.csv, result.json)")
    return 0 if result.status == "ok" else 1
