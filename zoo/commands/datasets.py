"""``zoo datasets``: list the registered datasets; ``check`` scans one for problems; ``show`` saves a preview.

::

    zoo datasets [PATTERN]                        list (name, channels, classes, description)
    zoo datasets check NAME [--root DIR] [--OPT V]  scan every item, list every problem, class frequencies
    zoo datasets show NAME [--out FILE.png]        PNG grid of images with their masks overlaid
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from zoo import api
from zoo.commands._table import format_table

ACTIONS = ("check", "show")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "datasets", parents=[common], help="list datasets; check or show one",
        usage="zoo datasets [PATTERN] | check NAME [--root DIR] [--OPTION V] | show NAME [--out FILE.png]",
        description="List the registered datasets with channels, classes and a description. "
                    "'check NAME' loads every item of every split, keeps going after bad files, lists every problem "
                    "and the per-class pixel frequencies, and exits 1 when it found errors. 'show NAME' saves a PNG "
                    "grid of images with their masks overlaid. Dataset options are given as --name value "
                    "(e.g. --root DIR, --fov true).")
    p.add_argument("action", nargs="?", metavar="PATTERN|check|show",
                   help="a name or wildcard to list, or the action check/show")
    p.add_argument("name", nargs="?", help="dataset name (for check and show)")
    p.add_argument("--split", choices=api.SPLITS, default=None, help="check: only this split; show: the split shown "
                                                                 "(default train)")
    p.add_argument("--limit", type=int, default=None, help="check: at most N items per split")
    p.add_argument("--out", default=None, help="show: output PNG (default NAME-preview.png)")
    p.add_argument("--count", type=int, default=8, help="show: number of items (default 8)")
    p.set_defaults(run=run, accepts_options=True)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    if args.action in ACTIONS:
        if not args.name:
            raise api.UnknownNameError(f"zoo datasets {args.action}: give a dataset name; available: "
                                   f"{', '.join(api.list_datasets())}")
        return run_check(args, options) if args.action == "check" else run_show(args, options)
    if args.name or options:
        raise api.UnknownNameError(f"zoo datasets: unexpected {args.name or next(iter(options))!r}; use "
                               f"'zoo datasets check NAME' or 'zoo datasets show NAME'")
    return run_list(args)


def _unknown(value: int | None) -> str:
    return "from data" if value is None else str(value)


def run_list(args: argparse.Namespace) -> int:
    reg = api.default_registry().datasets
    names = reg.select(args.action) if args.action else reg.names()
    rows = []
    for name in names:
        spec = reg.get(name)
        rows.append((name, _unknown(spec.in_channels), _unknown(spec.num_classes), spec.description))
    print(format_table(("dataset", "in_channels", "num_classes", "description"), rows))
    return 0


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}%"


def run_check(args: argparse.Namespace, options: dict[str, Any]) -> int:
    splits = (args.split,) if args.split else api.SPLITS
    dataset, report = api.check_dataset(args.name, splits=splits, limit=args.limit, **options)
    counts = ", ".join(f"{s} {n}" for s, n in report.counts.items())
    print(f"dataset {args.name}: {sum(report.counts.values())} items scanned ({counts})")
    print(f"  channels {dataset.in_channels}, classes {dataset.num_classes}, ignore_index {dataset.ignore_index}")
    print(f"  split source: {report.split_source}")
    print(f"  fingerprint: {dataset.fingerprint() if hasattr(dataset, 'fingerprint') else '-'}")
    scanned = list(report.class_pixels)
    if scanned:
        print("class pixel frequencies (share of labelled pixels):")
        per_split = {s: report.frequencies(s) for s in scanned}
        overall = report.frequencies()
        rows = [(c, name, _percent(overall[c]), *(_percent(per_split[s][c]) for s in scanned))
                for c, name in enumerate(report.class_names)]
        print(format_table(("index", "class", "all", *scanned), rows))
        n = len(report.class_names)
        ignored = sum(report.class_pixels[s][n] for s in scanned)
        total = sum(sum(report.class_pixels[s]) for s in scanned)
        if dataset.ignore_index is not None:
            print(f"ignored pixels (ignore_index {dataset.ignore_index}): {_percent(ignored / total if total else math.nan)}")
    for problem in report.problems:
        print(f"  {problem}")
    errors, warnings = len(report.errors), len(report.warnings)
    print(f"result: {'clean' if report.ok else f'{errors} error(s)'}, {warnings} warning(s)")
    return 0 if report.ok else 1


def run_show(args: argparse.Namespace, options: dict[str, Any]) -> int:
    out = args.out or f"{args.name}-preview.png"
    path = api.preview_dataset(args.name, out, split=args.split or "train", count=args.count, **options)
    print(f"wrote {path}")
    return 0
