"""The ``zoo`` command line: a thin shell over ``zoo.api``.

Each subcommand lives in its own module under ``zoo.commands`` with ``register(subparsers, common)``; the
parser it adds sets ``run(args, options) -> int``. ``main(argv) -> int`` is the real entry point (tests call it
in-process). A ``ZooError`` (bad input) prints one line to stderr and returns 2; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence

from zoo import api

__all__ = ["main", "build_parser", "UsageError", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

# One module per subcommand (or group of listing subcommands); order is the order of `zoo --help`.
COMMAND_MODULES = (
    "zoo.commands.listing",
    "zoo.commands.datasets",
    "zoo.commands.plan",
    "zoo.commands.info",
    "zoo.commands.train",
    "zoo.commands.eval",
    "zoo.commands.predict",
    "zoo.commands.export",
    "zoo.commands.bench",
    "zoo.commands.leaderboard",
    "zoo.commands.report",
)


class UsageError(api.ZooError):
    """Bad command-line usage (argparse's errors are turned into this)."""


# Commands zoo runs for itself (a benchmark cell in its own process): not offered in help or error messages.
INTERNAL_COMMANDS = ("bench-cell",)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        """One line for ``main`` to print after ``zoo: error:``: the subcommand's name, never ``zoo`` twice."""
        choice = re.match(r"argument (\w+): invalid choice: '?(.*?)'? \(choose from (.*)\)$", message)
        if choice:
            offered = [c.strip(" '") for c in choice.group(3).split(",")]
            public = [c for c in offered if c not in INTERNAL_COMMANDS]
            kind = "command" if choice.group(1) == "COMMAND" else choice.group(1).lower()
            close = difflib.get_close_matches(choice.group(2), public, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            message = f"unknown {kind} {choice.group(2)!r}{hint}; choose from {', '.join(sorted(public))}"
        raise UsageError(message if self.prog == "zoo" else f"{self.prog}: {message}")


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand name."""
    common = _Parser(add_help=False)
    common.add_argument("--strict-plugins", action="store_true", default=argparse.SUPPRESS,
                        help="fail when any plugin fails to load (also ZOO_STRICT_PLUGINS=1)")
    common.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="make every folder-layout dataset under DIR/<name>/ available (also ZOO_DATA=DIR)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="zoo", description="Seg Zoo: segmentation models as plugins, and a benchmark harness.",
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"zoo {api.__version__} (segzoo)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, common)
    return parser


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("zoo")
    handler = next((h for h in logger.handlers if getattr(h, "_zoo_cli", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("zoo: %(levelname)s: %(message)s"))
        handler._zoo_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    else:  # main() called again in one process (tests, notebooks): log to today's stderr, not the first one's
        handler.stream = sys.stderr  # type: ignore[attr-defined]  # (setStream would flush a closed one)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zoo`` command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        args.argv = tuple(argv)  # the command line as given (zoo bench records it in plan.json)
        _setup_logging(getattr(args, "verbose", False))
        # Environment, not globals, so that subprocesses (benchmark cells) see the same settings.
        if getattr(args, "strict_plugins", False):
            os.environ["ZOO_STRICT_PLUGINS"] = "1"
        if getattr(args, "data_dir", None):
            os.environ["ZOO_DATA"] = os.path.abspath(args.data_dir)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if extra and not getattr(args, "accepts_options", False):
            raise UsageError(f"zoo {args.command}: unrecognized arguments: {' '.join(extra)}")
        options = api.parse_option_args(extra) if extra else {}
        if args.command in ("train", "bench"):  # the long CPU jobs: say once if a faster malloc would help
            api.allocator_hint()
        return int(args.run(args, options))
    except api.ZooError as exc:
        print(f"zoo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
