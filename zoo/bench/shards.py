"""Shards of a grid: ``--shard I/N`` runs every N-th cell from the I-th, so N processes partition the grid."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from zoo.errors import OptionError

__all__ = ["parse_shard", "select_shard"]

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raise ``OptionError`` unless ``1 <= I <= N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise OptionError(f"--shard {text!r} is not of the form I/N with 1 <= I <= N (e.g. 1/4)")
    return int(match.group(1)), int(match.group(2))


def select_shard(cells: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """Every N-th cell starting at the I-th (1-based), so N shards partition the grid."""
    if shard is None:
        return list(cells)
    index, count = shard
    return list(cells[index - 1::count])
