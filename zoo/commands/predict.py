"""``zoo predict``: predict masks for image files.

Write NAME_mask.png (uint8 class indices) and NAME_overlay.png for each image, at the image's own size. By default
images are resized to the training size (as the recipe scores) and the prediction resized back; --native runs the
whole image at its size, --tiled slides training-size windows with blended overlaps. --model FILE runs an
exported model (zoo export) through the same pre- and post-processing. An image that cannot be read (corrupt,
over the pixel limit ZOO_MAX_IMAGE_PIXELS, wrong channels) is reported on one line and the others are still
written; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zoo import api
from zoo.commands._table import command_doc


_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, ...)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file or run folder (its best)")
    source.add_argument("--model", metavar="FILE", dest="checkpoint",
                        help="a file written by zoo export (.onnx runs on ONNX Runtime, CPU; .pt2 on torch)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tiled", dest="mode", action="store_const", const="tiled", help="sliding-window inference")
    mode.add_argument("--native", dest="mode", action="store_const", const="native", help="whole image, own size")
    p.add_argument("--batch-size", type=int, default=8, help="images (or tiles) per forward pass (default 8)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("--precision", default="auto",
                   help="auto (default: bf16 + channels_last where the CPU or GPU supports it, else fp32), fp32, "
                        "bf16, fp16 (CUDA)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model first (CUDA graphs on a GPU); pays back only over many images")
    p.set_defaults(run=run_predict, mode="resize")


def run_predict(args: argparse.Namespace, options: dict[str, Any]) -> int:
    result = api.predict(args.checkpoint, args.images, args.out, mode=args.mode, batch_size=args.batch_size,
                         device=args.device, precision=args.precision, compile=args.compile)
    for path, reason in result.failures:
        print(f"zoo: error: {path}: {reason}", file=sys.stderr)
    failed = f"; {len(result.failures)} of {len(args.images)} images failed" if result.failures else ""
    print(f"wrote {len(result.masks)} masks and overlays to {args.out}{failed}")
    return 0 if result.ok else 1
