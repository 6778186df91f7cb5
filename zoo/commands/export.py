"""``zoo export``: export a checkpoint to ONNX or a torch.export .pt2 file, and check it against the checkpoint.

The file takes normalised float32 NCHW images (H and W multiples of its stride) and returns raw logits; batch is
dynamic, and with --dynamic-size H and W too (otherwise fixed at the size the recipe scores at). Its metadata
holds class names, channels, normalisation, stride, zoo and model versions, the recipe and the whole pipeline
(resize, padding, sliding window, argmax or threshold). The parity check (on by default) runs the file with ONNX
Runtime (CPU) or as a loaded ExportedProgram on inputs of several sizes and prints the largest logit
difference; it fails above 1e-4 or when any mask pixel differs. ONNX needs the onnx extra (pip install
'segzoo[onnx]'). Run the file with zoo predict --model FILE or zoo eval --model FILE.
"""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api
from zoo.commands._table import command_doc, format_table

_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder (its best)")
    p.add_argument("--format", required=True, choices=("onnx", "pt2"), help="onnx or pt2 (torch.export)")
    p.add_argument("--out", metavar="FILE", help="output file (default: next to the checkpoint, STEM.onnx / STEM.pt2)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's; 18 or later)")
    p.add_argument("--dynamic-size", action="store_true", help="H and W dynamic (any multiple of the stride)")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare the file with the checkpoint on several input sizes (default: on)")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace, options: dict[str, Any]) -> int:
    result = api.export_checkpoint(args.checkpoint, format=args.format, out=args.out, opset=args.opset,
                                   dynamic_size=args.dynamic_size, check=args.check)
    size = "dynamic" if result.input_size is None else "x".join(map(str, result.input_size))
    opset = f", opset {result.opset}" if result.opset else ""
    print(f"wrote {result.path} ({result.model}, {result.exporter}{opset}; batch dynamic, H x W {size}, "
          f"multiples of {result.stride}; {result.seconds:.1f} s)")
    if not result.cases:
        return 0
    rows = [("x".join(map(str, c.shape)), f"{c.max_abs_diff:.2e}", "yes" if c.masks_equal else "NO",
             "ok" if c.passed else "FAIL") for c in result.cases]
    print(format_table(("input", "max |logit diff|", "masks equal", "check"), rows))
    verdict = "passed" if result.passed else "FAILED"
    print(f"parity {verdict}: largest difference {result.max_abs_diff:.2e} (tolerance {result.tolerance:g})")
    return 0 if result.passed else 1
