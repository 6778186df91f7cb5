"""``zoo report``: a benchmark folder as one self-contained HTML page.

Render DIR's tables (leaderboard, verdicts, floors, costs), its plots and every cell's details (recipe, plan,
environment, training curve, error) into one file that opens offline in any browser and prints: no server, no
network, images embedded. 'zoo bench' and 'zoo leaderboard' write it as DIR/report.html already.
"""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api
from zoo.commands._table import command_doc


_HELP, _DESCRIPTION = command_doc(__doc__)  # the docstring is the help line and the description


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("dir", metavar="DIR", help="a benchmark folder (written by zoo bench or zoo leaderboard)")
    p.add_argument("--out", metavar="FILE.html", help="where to write (default: DIR/report.html)")
    p.add_argument("--metric", help="main metric (default: the one the comparisons were computed on)")
    p.add_argument("--samples", metavar="DATASETS", default="all",
                   help="datasets whose test images the page shows in its qualitative grids: "
                        "a comma list, 'all' (default) or 'none' (publish only what the data's licence allows)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    path = api.report(args.dir, args.out, metric=args.metric, samples=args.samples)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
