"""``zoo models``, ``zoo metrics`` and ``zoo plugins``: what the installed plugins provide."""

from __future__ import annotations

import argparse
from typing import Any

from zoo import api
from zoo.commands._table import format_table


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", parents=[common], help="list the registered models",
                       description="List the registered models, optionally filtered by a wildcard.")
    p.add_argument("pattern", nargs="?", help="exact name or wildcard, e.g. 'unet*'")
    p.set_defaults(run=run_models)

    p = sub.add_parser("metrics", parents=[common], help="list the registered metrics")
    p.add_argument("pattern", nargs="?", help="exact name or wildcard")
    p.set_defaults(run=run_metrics)

    p = sub.add_parser("plugins", parents=[common], help="list plugins; 'zoo plugins new NAME' starts one",
                       description="List every plugin found in the 'segzoo' entry-point group: its "
                                   "distribution, version, status (ok, failed, blocked, unavailable), hooks and "
                                   "error, or the built-in names it overrides. 'zoo plugins new NAME [--dir DIR]' "
                                   "writes a plugin package skeleton (see 'zoo plugins new --help').")
    p.set_defaults(run=run_plugins, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    new = actions.add_parser("new", parents=[common], help="write a plugin package skeleton",
                             description="Write DIR/zoo-NAME/: a plugin package with one model, its entry point "
                                         "in the 'segzoo' group and a test file that runs the zoo.testing kit. "
                                         "It installs with pip and passes the kit as written.")
    new.add_argument("name", help="the new plugin's name (kebab-case; also its model's name)")
    new.add_argument("--dir", default=".", help="where to create zoo-NAME/ (default: the current directory)")
    new.set_defaults(run=run_plugins)


def _select(registry: Any, pattern: str | None) -> list[str]:
    return registry.select(pattern) if pattern else registry.names()


def run_models(args: argparse.Namespace, options: dict[str, Any]) -> int:
    reg = api.default_registry().models
    rows = [(name, reg.provider(name).name, reg.get(name).description) for name in _select(reg, args.pattern)]
    print(format_table(("model", "plugin", "description"), rows))
    return 0


def run_metrics(args: argparse.Namespace, options: dict[str, Any]) -> int:
    reg = api.default_registry().metrics
    rows = []
    for name in _select(reg, args.pattern):
        spec = reg.get(name)
        rows.append((name, "higher" if spec.higher_is_better else "lower", spec.description))
    print(format_table(("metric", "better", "description"), rows))
    return 0


def run_plugins(args: argparse.Namespace, options: dict[str, Any]) -> int:
    if args.action == "new":
        return _new_plugin(args)
    rows = [(p.name, p.distribution or "-", p.version or "-", p.status, ",".join(p.hooks) or "-", _note(p))
            for p in api.list_plugins()]
    print(format_table(("plugin", "distribution", "version", "status", "hooks", "error or note"), rows))
    return 0


def _note(plugin: Any) -> str:
    """The error of a plugin that did not load, or the built-in names it overrides."""
    if plugin.error:
        return plugin.error
    return "overrides " + ", ".join(plugin.overrides) if plugin.overrides else ""


def _new_plugin(args: argparse.Namespace) -> int:
    target = api.new_plugin(args.name, args.dir)
    print(f"wrote {target}")
    print(f"next: pip install -e {target} && zoo models {args.name} && python -m pytest {target / 'tests'}")
    return 0
