"""Run the speed suite and refresh the table in ``benchmarks/README.md``.

Usage::

    python benchmarks/run.py                 # the whole suite (about 10 minutes on 2 cores)
    python benchmarks/run.py --threads 1     # torch threads per process (use 1 on a busy shared machine)
    python benchmarks/run.py -k fast_path    # any other pytest arguments select or configure tests

Rows from files not run keep their previous values in ``benchmarks/results.json`` and the table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args, rest = parser.parse_known_args(argv)
    if args.threads:
        os.environ["ZOO_BENCH_THREADS"] = str(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    here = Path(__file__).resolve().parent
    targets = [] if any(Path(a.split("::")[0]).exists() for a in rest) else [str(here)]
    return int(pytest.main([*targets, "-q", "-s", "-p", "no:cacheprovider", "-o", "timeout=900",
                            "--benchmark-disable-gc", *rest]))


if __name__ == "__main__":
    sys.exit(main())
