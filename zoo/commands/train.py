"""``zoo train``: train a model on a dataset by name (the recipe is ``zoo.training.TrainConfig``)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import api
from zoo.commands._table import format_table
from zoo.errors import OptionError
from zoo.options import format_options, load_toml, option_defaults, parse_assignments

if TYPE_CHECKING:
    from zoo.training import TrainConfig

# flag -> TrainConfig field, for the flags whose value is taken as given
_FIELDS = ("epochs", "max_steps", "batch_size", "image_size", "eval_image_size", "lr", "weight_decay", "optimizer",
           "schedule", "loss", "augment", "val_every", "select_metric", "grad_clip", "device", "precision",
           "seed", "num_workers")
_FLAGS = ("channels_last", "compile", "deterministic", "tiled", "sync_bn")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "train", parents=[common], help="train a model on a dataset",
        description="Train MODEL on DATASET: fit on the train split, keep the best checkpoint by a validation "
                    "metric, then score it on the test split. Any other --name value is a model option if the "
                    "model takes it, else a dataset option. Settings from --config FILE.toml ([train], [model], "
                    "[dataset] tables) are overridden by the command line. Data-parallel on N processes: "
                    "torchrun --nproc-per-node N -m zoo train ... (see docs/scaling.md).")
    p.add_argument("--model", help="registered model name")
    p.add_argument("--dataset", help="registered dataset name")
    p.add_argument("--config", metavar="FILE.toml", help="recipe file: [train] settings, [model], [dataset] options")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATASET-sSEED)")
    p.add_argument("--epochs", type=int, help="epochs (default 25)")
    p.add_argument("--max-steps", type=int, help="optimizer steps; replaces --epochs as the budget")
    p.add_argument("--width", type=int, help="the model option 'width'")
    p.add_argument("--image-size", type=int, help="training image size (default 128)")
    p.add_argument("--eval-image-size", help="val/test scoring size: N, or 'native' (default: --image-size)")
    p.add_argument("--batch-size", type=int,
                   help="global batch size (default 16); under torchrun each of N processes takes 1/N of it")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, help="weight decay (default 0)")
    p.add_argument("--optimizer", help="adam (default), adamw or sgd")
    p.add_argument("--schedule", help="per-step lr schedule: constant (default), cosine or poly")
    p.add_argument("--loss", help="bce, ce, dice, dice+bce, dice+ce or focal (default: bce binary, ce multi-class)")
    p.add_argument("--augment", help="none, light (default) or strong")
    p.add_argument("--val-every", type=int, help="validate every N epochs (default 1)")
    p.add_argument("--select-metric", help="val column that picks the best checkpoint, pooled (default dice)")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    p.add_argument("--metrics", help="comma-separated test metrics (default: all registered)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", help="auto (default), cpu, cuda or mps")
    p.add_argument("--precision", help="auto (default: bf16 autocast + channels_last where the CPU has native "
                                       "bf16, or on a GPU; else fp32), fp32, bf16, fp16 (CUDA)")
    p.add_argument("--num-workers", type=int, help="DataLoader workers (default 0)")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels-last memory format")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--tiled", action="store_true", default=None,
                   help="score val/test by sliding windows (with --eval-image-size native)")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun: batch-norm statistics over the global batch (SyncBatchNorm, CUDA)")
    p.add_argument("--model-opt", action="append", default=[], metavar="K=V", help="a model option")
    p.add_argument("--dataset-opt", action="append", default=[], metavar="K=V", help="a dataset option")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--unsafe-load", action="store_true",
                   help="allow a training-state file that torch's weights-only loader refuses (trusted files only)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_train, accepts_options=True)


def _route(options: dict[str, Any], model: str, dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send each leftover option to the model if its builder takes it, else to the dataset."""
    reg = api.default_registry()
    model_opts = option_defaults(reg.models.get(model).builder, exclude=api.MODEL_RESERVED)
    data_opts = option_defaults(reg.datasets.get(dataset).builder)
    to_model, to_data = {}, {}
    for name, value in options.items():
        if name in model_opts:
            to_model[name] = value
        elif name in data_opts:
            to_data[name] = value
        else:
            raise OptionError(f"unknown option --{name.replace('_', '-')}: model {model!r} takes "
                              f"{format_options(model_opts) or 'none'}; dataset {dataset!r} takes "
                              f"{format_options(data_opts) or 'none'}")
    return to_model, to_data


def build_config(args: argparse.Namespace, options: dict[str, Any]) -> TrainConfig:
    """The recipe from ``--config`` (if any), overridden by the command line."""
    from zoo.training import TrainConfig  # imports torch: only when training

    file = load_toml(args.config) if args.config else {}
    unknown = sorted(set(file) - {"train", "model", "dataset"})
    if unknown:
        raise OptionError(f"config {args.config!r}: unknown table(s) {unknown}; use [train], [model], [dataset]")
    settings: dict[str, Any] = dict(file.get("train", {}))
    for name in ("model", "dataset"):
        if getattr(args, name):
            settings[name] = getattr(args, name)
        if not settings.get(name):
            raise OptionError(f"zoo train needs --{name} (or {name} = ... in the [train] table of --config)")
    for name in _FIELDS:
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    for name in _FLAGS:
        if getattr(args, name):
            settings[name] = True
    if args.metrics:
        settings["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    elif "metrics" in settings:
        settings["metrics"] = tuple(settings["metrics"])
    size = settings.get("eval_image_size")
    if isinstance(size, str) and size != "native":
        try:
            settings["eval_image_size"] = int(size)
        except ValueError:
            raise OptionError(f"--eval-image-size {size!r} is not a number or 'native'") from None
    routed_model, routed_data = _route(options, settings["model"], settings["dataset"])
    model_options = {**file.get("model", {}), **settings.pop("model_options", {}), **routed_model,
                     **parse_assignments(args.model_opt)}
    if args.width is not None:
        model_options["width"] = args.width
    dataset_options = {**file.get("dataset", {}), **settings.pop("dataset_options", {}), **routed_data,
                       **parse_assignments(args.dataset_opt)}
    return TrainConfig.from_dict({**settings, "model_options": model_options, "dataset_options": dataset_options})


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def run_train(args: argparse.Namespace, options: dict[str, Any]) -> int:
    from zoo.training import run

    config = build_config(args, options)
    out = Path(args.out or f"runs/{config.model}-{config.dataset}-s{config.seed}")
    result = run(config, out, resume=args.resume, quiet=args.quiet, unsafe_load=args.unsafe_load)
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
