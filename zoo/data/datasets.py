"""Datasets and their splits: the :class:`BaseDataset` builders return, split assignment, class lists.

A split assignment comes from an ``id,split`` file (:func:`read_split_csv`) or from a seed
(:func:`seeded_split`); class names (and colours for RGB masks) come from ``classes.txt`` (:func:`read_classes`).
:func:`fingerprint_of` hashes what determines a dataset's content, so benchmarks can record it.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.cache import CachedSplit
from zoo.data.validation import Problem
from zoo.errors import DatasetError, check_choice
from zoo.interfaces import SPLITS

__all__ = ["VOID_NAMES", "BaseDataset", "fingerprint_of", "read_classes", "read_split_csv", "seeded_split"]

#: Class names in ``classes.txt`` that mark the void label (it becomes ``ignore_index``).
VOID_NAMES = frozenset({"void", "unlabelled", "unlabeled", "ignore", "background_ignore", "unknown"})


def fingerprint_of(payload: Any) -> str:
    """A short stable hash (16 hex digits) of a JSON-able payload."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class BaseDataset:
    """Metadata plus fixed splits: what dataset builders return (``zoo.interfaces.SegmentationDataset``).

    Attributes:
        name: the registry name (or a label).
        in_channels, num_classes, class_names, ignore_index: the dataset contract.
        splits: split name -> split dataset (missing names are empty splits).
        split_source: where the split assignment comes from, e.g. ``"file:/data/x/split.csv"``,
            ``"seed:0 (70/15/15)"``, ``"published"`` or ``"generated:seed=0"``; benchmarks record it.
        params: the options that determine the content (for :meth:`fingerprint`).
        root: the folder read, if any.
        extras: free-form facts for ``zoo datasets check`` (e.g. ``{"fov": "fov/"}``).
    """

    name: str
    in_channels: int
    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int | None
    splits: dict[str, CachedSplit]
    split_source: str
    params: dict[str, Any] = field(default_factory=dict)
    root: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> CachedSplit:
        """The split ``name`` (``train``, ``val`` or ``test``).

        Raises:
            UnknownNameError: not a split name.
            DatasetError: the split is empty.
        """
        check_choice("split", name, SPLITS)
        split = self.splits.get(name)
        if split is None or len(split) == 0:
            raise DatasetError(f"split {name!r} of dataset {self.name!r} is empty"
                               + (f" (root {self.root!r}, split from {self.split_source})" if self.root else ""))
        return split

    def fingerprint(self, split: str | None = None) -> str:
        """Hash of the ids, their split assignment and the generation parameters (of one split, or of all)."""
        names = [split] if split is not None else list(SPLITS)
        assignment = {n: list(self.splits[n].ids) if n in self.splits else [] for n in names}
        return fingerprint_of({"name": self.name, "params": self.params, "classes": list(self.class_names),
                               "ignore_index": self.ignore_index, "splits": assignment})


def seeded_split(ids: Sequence[str], *, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
                 ) -> dict[str, list[str]]:
    """Deterministic train/val/test assignment of ``ids`` (sorted first, then shuffled by ``seed``)."""
    ordered = sorted(ids)
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = n - n_val - n_test
    return {"train": sorted(ordered[:n_train]), "val": sorted(ordered[n_train:n_train + n_val]),
            "test": sorted(ordered[n_train + n_val:])}


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or ``DatasetError`` naming it (not UTF-8, unreadable)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None


def read_split_csv(path: str | Path) -> tuple[dict[str, list[str]], list[Problem]]:
    """Read an ``id,split`` CSV (header optional) into split -> ids, with any malformed lines as problems."""
    path = Path(path)
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(_read_text(path, "split file").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if lineno == 1 and parts[:2] == ["id", "split"]:
            continue
        if len(parts) != 2 or parts[1] not in SPLITS:
            problems.append(Problem("split-file", f"{str(path)!r} line {lineno}: {line!r} is not 'id,split' with "
                                                  f"split one of {', '.join(SPLITS)}"))
            continue
        if parts[0] in seen:
            problems.append(Problem("split-file", f"{str(path)!r} line {lineno}: id {parts[0]!r} is listed twice"))
            continue
        seen[parts[0]] = parts[1]
        splits[parts[1]].append(parts[0])
    return splits, problems


def read_classes(path: str | Path) -> tuple[list[str], list[tuple[int, int, int] | None]]:
    """Read ``classes.txt``: one class per line, ``name`` or ``name R G B`` (a colour for RGB masks)."""
    names: list[str] = []
    colors: list[tuple[int, int, int] | None] = []
    for line in _read_text(Path(path), "class list").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) >= 4 and all(p.isascii() and p.isdigit() and int(p) < 256 for p in parts[-3:]):
            names.append(" ".join(parts[:-3]))
            colors.append((int(parts[-3]), int(parts[-2]), int(parts[-1])))
        else:
            names.append(line)
            colors.append(None)
    return names, colors
