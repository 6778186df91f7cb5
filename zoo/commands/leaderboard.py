"""``zoo leaderboard``: rebuild tables, plots and the page from benchmark records (merges shards).

Read the cell records under each DIR (e.g. the shards of one grid), and write runs.csv, per_image.csv,
floors.csv, leaderboard.csv, leaderboard_overall.csv, comparison.csv, pairs.csv, separation.csv, seed_advice.csv,
leaderboard.md, plots/ and report.html (the page: see 'zoo report') into --out (default: the first DIR). Nothing
is trained; the floors read the test masks once (zoo --data-dir DIR leaderboard ...) and are cached in floors.csv.
"""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api
from zoo.commands._table import command_doc


_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("leaderboard", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="benchmark output directories")
    p.add_argument("--out", metavar="DIR", help="where to write (default: the first DIR)")
    p.add_argument("--baseline", metavar="MODEL", help="model every variant is compared with (default: the "
                                                       "first model of the benchmark)")
    p.add_argument("--metric", help="main metric column (default: the recipe's select_metric, e.g. dice)")
    p.add_argument("--no-plots", action="store_true", help="draw no plots")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--samples", metavar="DATASETS", default="all",
                   help="datasets whose test images the page shows in its qualitative grids: "
                        "a comma list, 'all' (default) or 'none' (publish only what the data's licence allows)")
    p.add_argument("--readme", metavar="FILE", help="also rewrite FILE's generated blocks of this folder (results "
                                                     "summary, reproduction tables), e.g. results/README.md")
    p.add_argument("--published", metavar="CSV", help="published figures the reproduction tables compare with "
                                                       "(e.g. docs/published-figures.csv)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    written = api.leaderboard(args.dirs, args.out, baseline=args.baseline, metric=args.metric,
                              plots=not args.no_plots, html=not args.no_html, readme=args.readme,
                              published=args.published, samples=args.samples)
    for name, path in written.items():
        print(f"{name:<12} {path}")
    return 0
