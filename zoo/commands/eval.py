"""``zoo eval``: score a checkpoint on a dataset split.

Score a checkpoint (a .safetensors file or a run folder, which means its best) on a split. Writes
SPLIT_per_image.csv (image_id, metric, value) and SPLIT_summary.json to --out and prints pooled and per-image-mean
values. Any --name value is a dataset option. --model FILE scores an exported model (zoo export) with the same
pre- and post-processing.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from zoo import api
from zoo.commands._table import command_doc, format_table


_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common], help=_HELP, description=_DESCRIPTION)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file or run folder")
    source.add_argument("--model", metavar="FILE", dest="checkpoint",
                        help="a file written by zoo export (.onnx runs on ONNX Runtime, CPU; .pt2 on torch)")
    p.add_argument("--dataset", help="dataset name (default: the one it was trained on)")
    p.add_argument("--split", default="test", help="train, val or test (default test)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: next to the checkpoint, eval-SPLIT)")
    p.add_argument("--metrics", help="comma-separated metric names (default: all registered)")
    p.add_argument("--eval-image-size", help="N or 'native' (default: as in training)")
    p.add_argument("--tiled", action="store_true", help="sliding-window inference at native size")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("--precision", default="auto",
                   help="auto (default: bf16 on a CPU with native bf16 or on CUDA, else fp32), fp32, bf16, fp16")
    p.set_defaults(run=run_eval, accepts_options=True)


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def run_eval(args: argparse.Namespace, options: dict[str, Any]) -> int:
    size: Any = "checkpoint"
    if args.eval_image_size:
        if args.eval_image_size == "native":
            size = "native"
        elif args.eval_image_size.isdigit():
            size = int(args.eval_image_size)
        else:
            raise api.OptionError(f"--eval-image-size {args.eval_image_size!r} is not a number or 'native'")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else ()
    result = api.evaluate(args.checkpoint, args.dataset, split=args.split, dataset_options=options or None,
                          metrics=metrics, eval_image_size=size, tiled=args.tiled, batch_size=args.batch_size,
                          device=args.device, precision=args.precision)
    meta = result.meta
    ckpt = Path(meta["path"])
    out = Path(args.out) if args.out else ckpt.parent / f"eval-{args.split}"
    extra = {"checkpoint": str(ckpt), "model": meta["model"], "model_options": meta.get("model_options"),
             "dataset": meta["eval_dataset"], "split": args.split, "eval_image_size": meta["eval_image_size"],
             "tiled": args.tiled}
    csv_path, json_path = api.write_evaluation(result, out, prefix=args.split, extra=extra)
    print(f"{meta['model']} ({ckpt.name}) on {meta['eval_dataset']}/{args.split}: {result.n_images} images")
    rows = [(col, _fmt(result.pooled.get(col)), _fmt(result.mean.get(col)), result.nan_count.get(col, 0))
            for col in sorted(set(result.pooled) | set(result.mean))]
    print(format_table(("metric", "pooled", "per-image mean", "NaN images"), rows))
    print(f"wrote {csv_path} and {json_path}")
    return 0
