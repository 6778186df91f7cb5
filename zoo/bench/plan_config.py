"""A benchmark plan's inputs: the TOML config file, and the list values given in it or on the command line.

:func:`load_plan_config` reads the file and checks its keys; :func:`split_list` and the ``parse_*`` helpers turn
what the user wrote (a list, or a comma-separated string) into the validated seeds, option axes and step floor
that :func:`zoo.bench.grid.make_plan` combines into a plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import OptionError
from zoo.options import load_toml

__all__ = ["load_plan_config", "split_list", "parse_seeds", "parse_axes", "parse_min_steps"]


def split_list(value: Any, what: str) -> tuple[Any, ...]:
    """A list, or a comma-separated string, as a tuple (``None``: empty); ``what`` names it in the error."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise OptionError(f"{what} must be a list or a comma-separated string, not {value!r}")


def load_plan_config(path: str | Path) -> dict[str, Any]:
    """Read a benchmark TOML file into a dict (validated by :func:`zoo.bench.grid.make_plan`).

    Top-level keys: ``models``, ``datasets``, ``seeds``, ``profile``, ``name``, ``cell_timeout``, ``plan``
    (``auto``/``none``), ``budget`` (a string, or a table of dataset name -> budget), ``min_steps`` (the fewest
    optimizer steps a compute budget buys: the planner lowers the batch to reach it; default the profile's); tables
    ``[train]`` (recipe fields), ``[model]`` / ``[dataset]`` (options for all; a sub-table named after a model
    or dataset holds options for that one only) and ``[axes]`` (option name -> list of values).
    """
    data = load_toml(path)
    allowed = {"models", "datasets", "seeds", "profile", "name", "cell_timeout", "train", "model", "dataset",
               "axes", "infer_repeats", "plan", "budget", "deploy_speed", "min_steps"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise OptionError(f"config file {str(path)!r}: unknown key(s) {', '.join(unknown)}; "
                          f"valid keys: {', '.join(sorted(allowed))}")
    return data


def parse_min_steps(value: Any) -> int | None:
    """``min_steps``: ``None``, or a whole number of steps >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"min_steps={value!r} must be a whole number of steps >= 1")
    return value


def parse_seeds(value: Any) -> tuple[int, ...]:
    """The seeds, as integers in the order given, duplicates dropped; at least one."""
    seed_values = split_list(value, "seeds")
    try:
        seed_tuple = tuple(dict.fromkeys(int(s) for s in seed_values))
    except (TypeError, ValueError):
        raise OptionError(f"seeds must be integers, got {list(seed_values)!r}") from None
    if not seed_tuple:
        raise OptionError("no seeds given")
    return seed_tuple


def parse_axes(table: Mapping[str, Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The ``[axes]`` table as ``(option name, values)`` pairs; each axis has values and is not a grid dimension."""
    axes = tuple((str(k), tuple(split_list(v, f"axis {k!r}"))) for k, v in table.items())
    for axis, values in axes:
        if axis in ("model", "models", "dataset", "datasets", "seed", "seeds"):
            raise OptionError(f"axis {axis!r}: use --models/--datasets/--seeds for these")
        if not values:
            raise OptionError(f"axis {axis!r} has no values")

    return axes
