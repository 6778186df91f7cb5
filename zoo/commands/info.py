"""``zoo info MODEL``: description, options with defaults, parameters and GMACs."""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "info", parents=[common], help="show a model's options, parameter count and GMACs",
        description="Show a model's description, options (with defaults), parameter count and GMACs at an "
                    "input size. Any model option can be given as --name value, e.g. --width 32.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--in-channels", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--num-classes", type=int, default=1, help="output classes (default 1)")
    p.add_argument("--image-size", type=int, default=256, help="square input size for GMACs (default 256)")
    p.set_defaults(run=run, accepts_options=True)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    info = api.model_info(args.model, in_channels=args.in_channels, num_classes=args.num_classes,
                          image_size=args.image_size, **options)
    provider = info.provider
    dist = f"{provider.distribution} {provider.version}" if provider.distribution else "not installed"
    print(f"{info.name}: {info.description}")
    print(f"  plugin:      {provider.name} ({dist})")
    print(f"  options:     {api.format_options(info.options) or 'none'}")
    if options:
        print(f"  given:       {', '.join(f'{k}={v!r}' for k, v in options.items())}")
    print(f"  input:       {info.in_channels} x {info.image_size} x {info.image_size}, {info.num_classes} classes")
    print(f"  parameters:  {info.parameters:,}")
    print(f"  GMACs:       {info.gmacs:.3f}")
    return 0
