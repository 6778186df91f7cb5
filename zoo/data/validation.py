"""Finding what is wrong with a dataset: problems, their reporting, pair validation and the whole-dataset check.

Dataset builders collect :class:`Problem` s while indexing their files and hand them to :func:`report_problems`,
which raises (naming every error) or, under :func:`collect_problems`, records them so that ``zoo datasets check``
sees them all. :func:`validate_pair` checks one decoded image/mask pair; :func:`check_dataset` scans every item.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo.errors import DatasetError, OversizedImageError
from zoo.interfaces import SPLITS

__all__ = ["CheckReport", "Problem", "check_dataset", "collect_problems", "report_problems", "validate_pair"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: ``severity`` is ``"error"`` or ``"warning"``; ``kind`` is a short tag."""

    kind: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


_COLLECTOR: contextvars.ContextVar[list[Problem] | None] = contextvars.ContextVar("zoo_data_problems", default=None)


@contextlib.contextmanager
def collect_problems() -> Iterator[list[Problem]]:
    """While active, :func:`report_problems` records structural problems here instead of raising.

    ``zoo datasets check`` builds datasets inside this so that one missing file does not hide the others.
    """
    problems: list[Problem] = []
    token = _COLLECTOR.set(problems)
    try:
        yield problems
    finally:
        _COLLECTOR.reset(token)


def report_problems(problems: Sequence[Problem], what: str) -> None:
    """Raise ``DatasetError`` listing every error in ``problems``, or record them all under :func:`collect_problems`.

    Dataset builders call this once after indexing their files, with every problem they found, and then carry on
    without the broken items. Warnings are logged (or recorded), never raised.
    """
    collector = _COLLECTOR.get()
    if collector is not None:
        collector.extend(problems)
        return
    for p in problems:
        if p.severity != "error":
            log.warning("%s: %s", what, p.message)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        shown = "; ".join(p.message for p in errors[:5])
        more = f" (and {len(errors) - 5} more; run 'zoo datasets check' for the full list)" if len(errors) > 5 else ""
        raise DatasetError(f"{what}: {shown}{more}")


def validate_pair(image: Tensor, mask: Tensor, *, num_classes: int, ignore_index: int | None,
                  image_path: str | Path, mask_path: str | Path) -> None:
    """Check that a decoded image and mask agree in size and that every mask value is a class or ``ignore_index``.

    Raises:
        DatasetError: naming the files and the bad sizes or values.
    """
    if tuple(image.shape[-2:]) != tuple(mask.shape[-2:]):
        ih, iw = image.shape[-2:]
        mh, mw = mask.shape[-2:]
        raise DatasetError(f"image {str(image_path)!r} is {iw}x{ih} but its mask {str(mask_path)!r} is {mw}x{mh}")
    values = torch.unique(mask)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.numel():
        allowed = f"0..{num_classes - 1}" + (f" or ignore_index {ignore_index}" if ignore_index is not None else "")
        raise DatasetError(f"mask {str(mask_path)!r} has values {bad.tolist()[:10]} outside the declared classes "
                           f"({allowed})")


# ----------------------------------------------------------------------------------------------------------------
# Checking a whole dataset


@dataclass
class CheckReport:
    """What :func:`check_dataset` found.

    Attributes:
        problems: every error and warning, in scan order.
        counts: split -> number of items scanned.
        class_pixels: split -> per-class pixel counts (index ``num_classes`` counts ``ignore_index`` pixels).
    """

    name: str
    class_names: tuple[str, ...]
    ignore_index: int | None
    split_source: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    class_pixels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are not errors."""
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    def frequencies(self, split: str | None = None) -> list[float]:
        """Per-class share of labelled pixels (ignored pixels excluded), for one split or all."""
        n = len(self.class_names)
        rows = [self.class_pixels[split]] if split is not None else list(self.class_pixels.values())
        totals = [sum(r[c] for r in rows) for c in range(n)]
        labelled = sum(totals)
        return [t / labelled if labelled else math.nan for t in totals]


def check_dataset(dataset: Any, *, splits: Sequence[str] = SPLITS, limit: int | None = None,
                  problems: Sequence[Problem] = (), progress: Callable[[str, int, int], None] | None = None
                  ) -> CheckReport:
    """Load every item of every split, keep going after bad ones, and report problems and class frequencies.

    Args:
        dataset: a built ``SegmentationDataset``.
        splits: the splits to scan.
        limit: scan at most this many items per split (the fast check before a benchmark).
        problems: structural problems found while building (from :func:`collect_problems`).
        progress: called as ``progress(split, done, total)``.
    """
    n = dataset.num_classes
    ignore = dataset.ignore_index
    report = CheckReport(name=getattr(dataset, "name", "?"), class_names=tuple(dataset.class_names),
                         ignore_index=ignore, split_source=str(getattr(dataset, "split_source", "?")),
                         problems=list(problems))
    seen_ids: dict[str, str] = {}
    for split_name in splits:
        try:
            split = dataset.split(split_name)
        except DatasetError as exc:
            report.problems.append(Problem("empty-split", str(exc)))
            continue
        pixels = [0] * (n + 1)
        total = len(split) if limit is None else min(limit, len(split))
        describe = getattr(split, "describe", lambda i: split.ids[i])
        for i in range(total):
            item_id = split.ids[i]
            if item_id in seen_ids and seen_ids[item_id] != split_name:
                report.problems.append(Problem("split-overlap", f"id {item_id!r} is in both {seen_ids[item_id]!r} "
                                                                f"and {split_name!r}"))
            seen_ids[item_id] = split_name
            try:
                image, mask = split[i]
            except OversizedImageError as exc:  # refused from its header, before decoding
                report.problems.append(Problem("oversized", str(exc)))
                continue
            except DatasetError as exc:
                report.problems.append(Problem("item", str(exc)))
                continue
            if not torch.isfinite(image).all():
                report.problems.append(Problem("nan", f"{describe(i)}: image has NaN/Inf values"))
                continue
            counts = torch.bincount(mask[(mask >= 0) & (mask < n)].flatten(), minlength=n)
            for c in range(n):
                pixels[c] += int(counts[c])
            pixels[n] += int(mask.numel() - counts.sum())
            if n > 1 and int(counts[1:].sum()) == 0:
                report.problems.append(Problem("all-background", f"{describe(i)}: mask is all background "
                                                                 f"({report.class_names[0]!r})", "warning"))
            if progress is not None:
                progress(split_name, i + 1, total)
        report.counts[split_name] = total
        report.class_pixels[split_name] = pixels
    return report
