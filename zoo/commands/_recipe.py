"""The recipe flags that ``zoo train`` and ``zoo bench`` share: declared once, read into one recipe layer."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from zoo import api

# flag -> (type, help); the help's default is added per command
_VALUED: dict[str, tuple[Any, str]] = {
    "epochs": (int, "epochs"),
    "max_steps": (int, "optimizer steps; replaces --epochs as the budget"),
    "width": (int, "the model option 'width'"),
    "image_size": (int, "training image size"),
    "eval_image_size": (str, "val/test scoring size: N, 'native', or 'upsampled' (predicted at --image-size, "
                               "scored at the original size)"),
    "batch_size": (int, "global batch size; under torchrun each of N processes takes 1/N of it"),
    "lr": (float, "learning rate"),
    "weight_decay": (float, "weight decay"),
    "optimizer": (str, "adam, adamw or sgd"),
    "schedule": (str, "per-step lr schedule: constant, cosine or poly"),
    "loss": (str, "bce, ce, dice, dice+bce, dice+ce or focal (default: bce binary, ce multi-class)"),
    "augment": (str, "none, light, strong, or '+'-joined steps of hflip, vflip, rot90"),
    "val_every": (int, "validate every N epochs"),
    "select_metric": (str, "val column that picks the best checkpoint, pooled"),
    "grad_clip": (float, "clip the gradient norm to this value"),
    "metrics": (str, "comma-separated test metrics (default: all registered)"),
    "device": (str, "auto, cpu, cuda, cuda:1 or mps"),
    "precision": (str, "auto (bf16 autocast + channels_last where the CPU has native bf16, or on a GPU; else "
                       "fp32), fp32, bf16, fp16 (CUDA)"),
    "num_workers": (int, "DataLoader workers"),
    "patch_size": (str, "train on native-scale patches of N or HxW pixels instead of --image-size squares"),
    "sampling": (str, "with --patch-size: whole (images padded to the patch) or crop (random crops)"),
    "foreground_share": (float, "with crop sampling: share of patches centred on a foreground pixel"),
    "foreground_classes": (str, "comma-separated classes that count as foreground (default: all but 0)"),
    "scale_jitter": (str, "random patch scale range LOW,HIGH, e.g. 0.9,1.1"),
    "input_scale": (float, "rescale images by this factor for training and prediction (scored at native size)"),
    "eval_window": (str, "sliding-window size N or HxW (default: the patch size, else the image size)"),
    "eval_overlap": (float, "sliding-window overlap in [0, 1)"),
    "eval_blend": (str, "sliding-window blending: gaussian, constant or tent"),
}
_SWITCHES = {
    "channels_last": "channels-last memory format",
    "compile": "torch.compile the model",
    "deterministic": "torch.use_deterministic_algorithms(True)",
    "tiled": "score val/test by sliding windows (with --eval-image-size native)",
    "sync_bn": "under torchrun: batch-norm statistics over the global batch (SyncBatchNorm, CUDA)",
}


def add_recipe_flags(parser: argparse.ArgumentParser, *, defaults: Mapping[str, Any] | None = None,
                     default_note: str | None = None) -> None:
    """Add every recipe flag to ``parser``.

    Args:
        defaults: flag -> the default to name in its help (``zoo train``: ``TrainConfig``'s).
        default_note: what to say instead for flags without an entry in ``defaults`` (``zoo bench``: "the
            profile's").
    """
    defaults = defaults or {}
    for name, (kind, text) in _VALUED.items():
        flag = "--" + name.replace("_", "-")
        if name in defaults:
            text += f" (default {defaults[name]})"
        elif default_note and "default" not in text:
            text += f" (default: {default_note})"
        parser.add_argument(flag, type=kind, help=text)
    for name, text in _SWITCHES.items():
        parser.add_argument("--" + name.replace("_", "-"), action="store_true", default=None, help=text)
    parser.add_argument("--model-opt", action="append", default=[], metavar="K=V", help="a model option")
    parser.add_argument("--dataset-opt", action="append", default=[], metavar="K=V", help="a dataset option")


def recipe_layer(args: argparse.Namespace, **train: Any) -> dict[str, dict[str, Any]]:
    """The recipe flags of ``args`` as one layer (plus ``train`` values such as model, dataset, seed)."""
    values = {name: getattr(args, name) for name in api.RECIPE_FLAGS}
    layer = api.recipe_flags_layer(values, model_opt=args.model_opt, dataset_opt=args.dataset_opt,
                                   metrics=args.metrics, width=args.width)
    layer["train"].update({k: v for k, v in train.items() if v is not None})
    return layer
