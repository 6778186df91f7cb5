"""Builder options: parsed from the command line or a TOML file, validated against the builder's signature.

Every model, dataset and metric builder takes keyword options with defaults; zoo reads them from the builder's
signature, so an unknown option is an error listing the valid ones with their defaults.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import OptionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["option_defaults", "validate_options", "parse_value", "parse_option_args", "load_toml", "format_options"]

_MISSING = inspect.Parameter.empty


def option_defaults(builder: Callable[..., Any], *, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Option name -> default (``inspect.Parameter.empty`` when required) for a builder."""
    out = {}
    for p in inspect.signature(builder).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in exclude:
            continue
        out[p.name] = p.default
    return out


def format_options(defaults: Mapping[str, Any]) -> str:
    """``width=64, depth=5, in_channels (required)``."""
    return ", ".join(f"{k} (required)" if v is _MISSING else f"{k}={v!r}" for k, v in defaults.items())


def validate_options(
    builder: Callable[..., Any], options: Mapping[str, Any], *, what: str, exclude: Sequence[str] = ()
) -> dict[str, Any]:
    """Return ``options`` with ``-`` in names turned into ``_``; raise ``OptionError`` for unknown names.

    Args:
        builder: the function the options are for.
        options: name -> value.
        what: how to call the builder in messages, e.g. ``"model 'unet'"``.
        exclude: parameters that zoo sets itself and that users may not pass.
    """
    defaults = option_defaults(builder, exclude=exclude)
    clean: dict[str, Any] = {}
    for raw_name, value in options.items():
        name = raw_name.replace("-", "_")
        if name not in defaults:
            valid = format_options(defaults) or "none"
            raise OptionError(f"unknown option {raw_name!r} for {what}; valid options: {valid}")
        clean[name] = value
    return clean


def parse_value(text: str) -> Any:
    """Turn command-line text into a Python value: ``16`` -> 16, ``0.1``, ``true``, ``none``, ``16,32`` -> (16, 32).

    Anything else stays a string.
    """
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    if lowered in {"none", "null"}:
        return None
    if "," in text and not text.strip().startswith(("(", "[")):
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # ({[]: 1} is a TypeError)
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_option_args(args: Sequence[str]) -> dict[str, Any]:
    """Parse leftover ``--name value`` / ``--name=value`` / ``--flag`` arguments into an options dict.

    Raises:
        OptionError: for an argument that is not an option (``16`` without a name before it).
    """
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise OptionError(f"unexpected argument {arg!r}; options are given as --name value")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"  # a bare --flag
        options[name.replace("-", "_")] = parse_value(value)
        i += 1
    return options


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``["width=16", "up_mode=bilinear"]`` into an options dict."""
    options = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise OptionError(f"option {item!r} is not of the form NAME=VALUE")
        options[name.strip().replace("-", "_")] = parse_value(value)
    return options


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; raise ``OptionError`` naming the file when it is missing or invalid."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise OptionError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:  # a folder, no permission
        raise OptionError(f"config file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
