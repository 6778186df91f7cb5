"""``zoo datasets``: list the registered datasets; ``check`` scans one, ``show`` previews, ``fingerprint`` describes.

::

    zoo datasets [PATTERN]                        list (name, channels, classes, description)
    zoo datasets check NAME [--root DIR] [--OPT V]  scan every item, list every problem, class frequencies
    zoo datasets show NAME [--out FILE.png]        PNG grid of images with their masks overlaid
    zoo datasets fingerprint NAME [--json]        what a recipe is planned from (see zoo plan)
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from zoo import api
from zoo.commands._table import format_table

ACTIONS = ("check", "show", "fingerprint")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "datasets", parents=[common], help="list datasets; check or show one",
        usage="zoo datasets [PATTERN] | check NAME [--root DIR] [--OPTION V] | show NAME [--out FILE.png] | "
              "fingerprint NAME [--json] [--refresh]",
        description="List the registered datasets with channels, classes and a description. "
                    "'check NAME' loads every item of every split, keeps going after bad files, lists every problem "
                    "and the per-class pixel frequencies, and exits 1 when it found errors. 'show NAME' saves a PNG "
                    "grid of images with their masks overlaid. 'fingerprint NAME' reads the train split once "
                    "and reports image sizes, channels, intensities, class shares, the scale and thickness of "
                    "each class's structures, the void label and region of interest (cached; what 'zoo plan' "
                    "plans from). Dataset options are given as --name value "
                    "(e.g. --root DIR, --fov true).")
    p.add_argument("action", nargs="?", metavar="PATTERN|check|show|fingerprint",
                   help="a name or wildcard to list, or the action check/show/fingerprint")
    p.add_argument("name", nargs="?", help="dataset name (for check, show and fingerprint)")
    p.add_argument("--split", choices=api.SPLITS, default=None, help="check: only this split; show: the split shown "
                                                                 "(default train)")
    p.add_argument("--limit", type=int, default=None, help="check: at most N items per split")
    p.add_argument("--out", default=None, help="show: output PNG (default NAME-preview.png)")
    p.add_argument("--count", type=int, default=8, help="show: number of items (default 8)")
    p.add_argument("--json", action="store_true", help="fingerprint: print it as JSON")
    p.add_argument("--refresh", action="store_true", help="fingerprint: compute again, ignoring the cache")
    p.set_defaults(run=run, accepts_options=True)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    if args.action in ACTIONS:
        if not args.name:
            raise api.UnknownNameError(f"zoo datasets {args.action}: give a dataset name; available: "
                                   f"{', '.join(api.list_datasets())}")
        runner = {"check": run_check, "show": run_show, "fingerprint": run_fingerprint}[args.action]
        return runner(args, options)
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


def _opt(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def run_fingerprint(args: argparse.Namespace, options: dict[str, Any]) -> int:
    fp = api.fingerprint(args.name, dataset_options=options, refresh=args.refresh)
    if args.json:
        print(json.dumps(fp.to_dict(), indent=2))
        return 0
    sizes = ", ".join(f"{name} {lo}/{mid}/{hi}" for name, (lo, mid, hi) in (("height", fp.heights),
                                                                          ("width", fp.widths)))
    print(f"dataset {fp.dataset}: {fp.items} {fp.split} items, {fp.channels} channels, {fp.num_classes} classes "
          f"(fingerprint {fp.identity})")
    print(f"  image size (min/median/max): {sizes}")
    print(f"  intensity mean {', '.join(f'{v:.3f}' for v in fp.intensity_mean)}; std "
          f"{', '.join(f'{v:.3f}' for v in fp.intensity_std)}")
    void = "none" if fp.ignore_index is None else f"{fp.ignore_index} ({_percent(fp.ignore_share)} of pixels)"
    roi = f"yes ({_percent(fp.roi_share)} of pixels inside)" if fp.roi else "no"
    print(f"  void label: {void}; region of interest: {roi}")
    rows = [(c.index, c.name, _percent(c.pixel_share), _percent(c.image_share), c.objects, _opt(c.typical_extent),
             _opt(c.median_thickness, "{:g}"), _opt(c.top_share, "{:.2f}"), _opt(c.left_share, "{:.2f}"))
            for c in fp.classes]
    print(format_table(("index", "class", "pixels", "images", "objects", "typical extent px", "thickness px",
                        "top share", "left share"), rows))
    return 0


def run_show(args: argparse.Namespace, options: dict[str, Any]) -> int:
    out = args.out or f"{args.name}-preview.png"
    path = api.preview_dataset(args.name, out, split=args.split or "train", count=args.count, **options)
    print(f"wrote {path}")
    return 0
