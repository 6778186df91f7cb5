"""``zoo datasets``: list the registered datasets (further actions are added as subcommands here)."""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api
from zoo.commands._table import format_table


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("datasets", parents=[common], help="list the registered datasets",
                       description="List the registered datasets with channels, classes and a description.")
    p.add_argument("pattern", nargs="?", help="exact name or wildcard")
    p.set_defaults(run=run_list)


def _unknown(value: int | None) -> str:
    return "from data" if value is None else str(value)


def run_list(args: argparse.Namespace, options: dict[str, Any]) -> int:
    reg = api.default_registry().datasets
    names = reg.select(args.pattern) if args.pattern else reg.names()
    rows = []
    for name in names:
        spec = reg.get(name)
        rows.append((name, _unknown(spec.in_channels), _unknown(spec.num_classes), spec.description))
    print(format_table(("dataset", "in_channels", "num_classes", "description"), rows))
    return 0
