"""Floors: what trivial predictors score on a benchmark's test masks, without training (issue 13).

Per dataset, each constant predictor "every pixel is class c" (``floor: all <class>``) is scored by the
registered metrics the grid's cells used, per image and pooled, on the test masks at the size the cells were
scored at (the recipe of the dataset's first ``ok`` record: its dataset options, ``image_size`` and
``eval_image_size``). The floors the tables show (:func:`shown_floors`) are the majority class over the
test pixels, and the foreground for a binary set (for a multi-class set also the best constant class);
``floors.csv`` keeps every class.

``floors.csv`` (columns ``FLOOR_COLUMNS``) caches them next to the records, so a leaderboard re-rendered where
the data is absent still shows them. Rows with an ``image_id`` are per-image values; rows without one are the
pooled value of the split; rows of the floor ``MASKS`` hold each image's pixel count per class
(``pixels/<class>``), which the minority-class table needs. A cached dataset is reused while its fingerprint and
``scored_at`` (the scoring size: ``native`` or a side in pixels) match the records' and it holds every metric
asked for.

**Minority class of a binary set.** Binary metrics score the foreground only. When the foreground is the
majority (ISBI: cell interior), the informative class is the background, and the cells did not score it. Its
per-image Dice is recovered from the confusion counts the recorded foreground ``recall`` (TP / G) and pixel
``accuracy`` ((TP + TN) / N) imply, given the image's pixel counts G (foreground) and N (scored):
``TP = recall G``, ``FN = G - TP``, ``TN = accuracy N - TP``, ``FP = N - G - TN``, and the background's Dice is
``2 TN / (2 TN + FN + FP)`` (NaN when the background is absent from both masks). This relies on the metrics'
documented definitions; without both columns there is no minority table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from zoo.bench.verdicts import FLOOR_PREFIX
from zoo.errors import ZooError
from zoo.fileio import atomic_write_text

if TYPE_CHECKING:
    from torch import Tensor

    from zoo.bench.records import CellRecord
    from zoo.interfaces import Metric
    from zoo.registry import Registries

__all__ = ["FLOOR_FILE", "FLOOR_COLUMNS", "MASKS", "FloorSet", "floor_name", "score_floors", "compute_floors",
           "load_floors", "write_floors", "scored_at", "floor_scores", "shown_floors", "minority_class", "minority_dice",
           "minority_table"]

log = logging.getLogger(__name__)
FLOOR_FILE = "floors.csv"
FLOOR_COLUMNS = ["dataset", "dataset_fingerprint", "scored_at", "floor", "image_id", "metric", "value"]
MASKS = "(test masks)"  # the pseudo-floor whose rows are pixel counts per class


def floor_name(class_name: str) -> str:
    """The variant name of the predictor that says ``class_name`` everywhere."""
    return f"{FLOOR_PREFIX}all {class_name}"


# --- scoring ------------------------------------------------------------------------------------------------

def score_floors(batches: Sequence[tuple[Sequence[str], Tensor]], metrics: Mapping[str, Metric], *,
                 class_names: Sequence[str], ignore_index: int | None) -> pd.DataFrame:
    """Score every constant predictor on test masks.

    Args:
        batches: ``(image ids, masks (N, H, W) int64)`` in split order.
        metrics: name -> a metric built for the dataset (reset here).
        class_names: one name per class; class ``c`` gives the floor ``floor: all <class_names[c]>``.
        ignore_index: the void label, left out of the pixel counts.

    Returns:
        Rows ``floor, image_id, metric, value``: per image and pooled (``image_id`` NaN) for every floor and
        metric column (of the per-class columns, only the floor's own class), then the ``MASKS`` rows
        ``pixels/<class>`` per image.
    """
    import torch

    rows: list[tuple[str, Any, str, float]] = []
    for c, name in enumerate(class_names):
        for metric in metrics.values():
            metric.reset()
        for ids, masks in batches:
            pred = torch.full_like(masks, c)
            for metric in metrics.values():
                values = _own_columns(metric.update(pred, masks), name, class_names)
                rows += [(floor_name(name), i, column, float(v)) for column, per in values.items()
                         for i, v in zip(ids, per.tolist())]
        for metric in metrics.values():
            pooled = _own_columns(metric.compute(), name, class_names)
            rows += [(floor_name(name), math.nan, column, float(v)) for column, v in pooled.items()]
    for ids, masks in batches:
        flat = masks.reshape(len(masks), -1)
        for c, name in enumerate(class_names):
            counts = (flat == c).sum(dim=1).tolist()
            rows += [(MASKS, i, f"pixels/{name}", float(n)) for i, n in zip(ids, counts)]
    return pd.DataFrame(rows, columns=["floor", "image_id", "metric", "value"])


def _own_columns(values: Mapping[str, Any], name: str, class_names: Sequence[str]) -> dict[str, Any]:
    """The class average and the ``name`` class's own column (another class's is 0 or undefined here)."""
    others = {f"/{n}" for n in class_names if n != name}
    return {k: v for k, v in values.items() if "/" not in k or k[k.index("/"):] not in others}


def scored_at(config: Mapping[str, Any]) -> str:
    """The size a recipe scores its test masks at: ``native`` or the side in pixels."""
    if config.get("tiled") or config.get("eval_image_size") == "native":
        return "native"
    return str(config.get("eval_image_size") or config.get("image_size"))


def _test_batches(dataset: Any, config: Mapping[str, Any]) -> list[tuple[list[str], Tensor]]:
    """The test masks at the size the cells scored them (``eval_image_size`` of the recipe)."""
    from zoo.training.parts import eval_loader

    split = dataset.split("test")
    size = "native" if scored_at(config) == "native" else config.get("eval_image_size")
    loader = eval_loader(split, size, int(config.get("image_size") or 0), 8)
    ids, batches, seen = list(split.ids), [], 0
    for _, masks in loader:
        batches.append(([str(i) for i in ids[seen:seen + len(masks)]], masks.long()))
        seen += len(masks)
    return batches


@dataclass(frozen=True)
class FloorSet:
    """The floors of a benchmark (``frame``: ``FLOOR_COLUMNS``) and one line per dataset without them."""

    frame: pd.DataFrame
    notes: tuple[str, ...] = ()


def compute_floors(record: CellRecord, metric_names: Sequence[str], *,
                   registries: Registries | None = None) -> pd.DataFrame:
    """The floors of ``record``'s dataset, built through the registry with the record's recipe.

    Args:
        record: an ``ok`` record of the dataset (its config gives dataset options and scoring size).
        metric_names: the registered metrics to score (those the cells report).
        registries: the plugins (default: the installed ones; ``ZOO_DATA`` says where the data is).

    Returns:
        ``FLOOR_COLUMNS`` rows.

    Raises:
        ZooError, OSError: the dataset cannot be built (unknown name, data absent).
        ValueError: the data's fingerprint is not the one the cells were scored on.
    """
    from zoo import registry
    from zoo.training.parts import build_metrics

    reg = registry.resolve(registries)
    config = record.config
    dataset = registry.build_dataset(record.dataset, registries=reg, **dict(config.get("dataset_options") or {}))
    fingerprint = dataset.fingerprint() if callable(getattr(dataset, "fingerprint", None)) else None
    if record.dataset_fingerprint and fingerprint and fingerprint != record.dataset_fingerprint:
        raise ValueError(f"its data has fingerprint {fingerprint}, the cells were scored on "
                         f"{record.dataset_fingerprint}")
    names = [n for n in scored_names(record, metric_names) if n in reg.metrics]
    frame = score_floors(_test_batches(dataset, config), build_metrics(names, dataset, reg),
                         class_names=list(dataset.class_names), ignore_index=dataset.ignore_index)
    frame.insert(0, "scored_at", scored_at(config))
    frame.insert(0, "dataset_fingerprint", record.dataset_fingerprint or "")
    frame.insert(0, "dataset", record.dataset)
    return frame[FLOOR_COLUMNS]


# --- the cache ----------------------------------------------------------------------------------------------

def _read_cache(paths: Sequence[Path]) -> pd.DataFrame:
    """The first readable ``floors.csv`` among ``paths``, else an empty table."""
    for path in paths:
        if path.is_file():
            frame = pd.read_csv(path, dtype={"image_id": str, "dataset_fingerprint": str, "dataset": str,
                                             "scored_at": str},
                                keep_default_na=False, na_values={"value": ["", "nan", "NaN"], "image_id": [""]})
            if list(frame.columns) == FLOOR_COLUMNS:  # an older layout is recomputed
                return frame
    return pd.DataFrame(columns=FLOOR_COLUMNS)


def _first_ok(records: Sequence[CellRecord]) -> dict[str, CellRecord]:
    first: dict[str, CellRecord] = {}
    for record in records:
        if record.status == "ok":
            first.setdefault(record.dataset, record)
    return first


def scored_names(record: CellRecord, metric_names: Sequence[str]) -> list[str]:
    """The ``metric_names`` this record's dataset was scored with: a folder's metrics are the union over its
    datasets, and a binary-only metric of one dataset does not apply to a multi-class one."""
    scored = {key.split("/")[0].removesuffix("_pooled") for key in (record.metrics or {})}
    return [n for n in metric_names if not scored or n in scored]


def load_floors(records: Sequence[CellRecord], cache: Sequence[Path], metric_names: Sequence[str], *,
                registries: Registries | None = None) -> FloorSet:
    """The floors of every dataset of ``records``: from the first ``floors.csv`` in ``cache``, else computed.

    A dataset that cannot be built gives one line in ``notes`` and no floors; the others go on.
    """
    cached = _read_cache(cache)
    frames, notes = [], []
    for dataset, record in sorted(_first_ok(records).items()):
        fingerprint = record.dataset_fingerprint or ""
        have = cached[(cached["dataset"] == dataset) & (cached["dataset_fingerprint"].fillna("") == fingerprint)
                      & (cached["scored_at"].fillna("") == scored_at(record.config))]
        if not have.empty and set(scored_names(record, metric_names)) <= {m.split("/")[0] for m in have["metric"]}:
            frames.append(have)
            continue
        try:  # absent from the cache, or a metric is missing from it
            frames.append(compute_floors(record, metric_names, registries=registries))
        except (ZooError, OSError, ValueError) as exc:
            if not have.empty:  # the data is gone: the cached metrics are better than none
                frames.append(have)
                continue
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            notes.append(f"No floors for `{dataset}`: its test masks could not be read ({first_line}); "
                         f"run `zoo --data-dir DIR leaderboard ...` where the data is.")
            log.warning("no floors for %s: %s", dataset, first_line)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLOOR_COLUMNS)
    return FloorSet(frame[FLOOR_COLUMNS], tuple(notes))


def write_floors(floors: FloorSet, path: Path) -> Path:
    """``floors.csv``, written atomically."""
    from zoo.bench.tables import csv_text

    atomic_write_text(path, csv_text(floors.frame))
    return path


# --- views --------------------------------------------------------------------------------------------------

def floor_scores(floors: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-image floor values of one metric column as score-table rows (``dataset, variant, seed, image_id,
    value``, seed NaN)."""
    part = floors[(floors["metric"] == column) & floors["image_id"].notna() & (floors["floor"] != MASKS)]
    return pd.DataFrame({"dataset": part["dataset"].to_numpy(), "variant": part["floor"].to_numpy(),
                         "seed": np.nan, "image_id": part["image_id"].astype(str).to_numpy(),
                         "value": part["value"].to_numpy(float)})


def _pixels(floors: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per image (rows) the pixel count of each class (columns, in file order)."""
    part = floors[(floors["dataset"] == dataset) & (floors["floor"] == MASKS)]
    wide = part.pivot(index="image_id", columns="metric", values="value")
    names = list(pd.unique(part["metric"]))
    return wide[names].rename(columns=lambda m: m.removeprefix("pixels/"))


def shown_floors(floors: pd.DataFrame, dataset: str, column: str, *, higher_is_better: bool = True) -> list[str]:
    """The floors a table shows for ``dataset``: the majority class, the foreground of a binary set, and the
    best constant class by ``column``'s mean over images (in that order, without repeats)."""
    pixels = _pixels(floors, dataset)
    if pixels.empty:
        return []
    names = list(pixels.columns)
    shown = [floor_name(str(pixels.sum().idxmax()))]
    if len(names) == 2:
        shown.append(floor_name(names[1]))
    means = floor_scores(floors[floors["dataset"] == dataset], column).groupby("variant")["value"].mean()
    if len(means.dropna()):
        shown.append(str(means.idxmax() if higher_is_better else means.idxmin()))
    return list(dict.fromkeys(shown))


def minority_class(floors: pd.DataFrame, dataset: str) -> str | None:
    """The background's name when ``dataset`` is binary and its foreground is the majority of test pixels."""
    pixels = _pixels(floors, dataset)
    if pixels.shape[1] != 2:
        return None
    totals = pixels.sum()
    return str(totals.index[0]) if totals.iloc[1] > totals.iloc[0] else None


def minority_dice(scores: pd.DataFrame, floors: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per-image Dice of a binary set's background, from recorded ``recall`` and ``accuracy`` (module docstring).

    Args:
        scores: per-image rows ``variant, seed, image_id, metric, value`` of one dataset (cells or floors).
        floors: ``floors.csv`` (for the pixel counts).
        dataset: the dataset.

    Returns:
        ``variant, seed, image_id, value`` rows; empty without ``recall`` and ``accuracy`` or pixel counts.
    """
    pixels = _pixels(floors, dataset)
    wide = scores[scores["metric"].isin(("recall", "accuracy"))].pivot_table(
        index=["variant", "seed", "image_id"], columns="metric", values="value", dropna=False)
    if pixels.shape[1] != 2 or not {"recall", "accuracy"} <= set(wide.columns):
        return pd.DataFrame(columns=["variant", "seed", "image_id", "value"])
    wide = wide.reset_index()
    counts = pixels.reindex(wide["image_id"].astype(str)).to_numpy(float)
    g, n = counts[:, 1], counts.sum(axis=1)
    tp = np.where(g > 0, wide["recall"].to_numpy(float) * g, 0.0)
    tn = wide["accuracy"].to_numpy(float) * n - tp
    fn, fp = g - tp, n - g - tn
    denominator = 2 * tn + fn + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denominator > 0.5, 2 * tn / denominator, np.nan)  # counts are whole: 0.5 absorbs rounding
    return pd.DataFrame({"variant": wide["variant"], "seed": wide["seed"], "image_id": wide["image_id"],
                         "value": np.clip(dice, 0.0, 1.0)})


def minority_table(per_image: pd.DataFrame, floors: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The minority class's Dice per variant of ``dataset`` (mean and std over seeds of per-image means), the
    models by mean then every floor; empty unless :func:`minority_class` names one.

    Args:
        per_image: per-image rows of the ``ok`` cells (``variant, seed, image_id, metric, value``).
        floors: ``floors.csv``.
        dataset: the dataset.
    """
    columns = ["variant", "n_seeds", "mean", "std"]
    if minority_class(floors, dataset) is None:
        return pd.DataFrame(columns=columns)
    models = per_image[per_image["dataset"] == dataset]
    own = floors[(floors["dataset"] == dataset) & floors["image_id"].notna() & (floors["floor"] != MASKS)]
    as_rows = pd.DataFrame({"variant": own["floor"], "seed": -1, "image_id": own["image_id"], "metric": own["metric"],
                            "value": own["value"]})
    parts = []
    for frame in (models, as_rows):
        dice = minority_dice(frame.assign(image_id=frame["image_id"].astype(str)), floors, dataset)
        cells = dice.groupby(["variant", "seed"], sort=False)["value"].mean().groupby(level=0, sort=False)
        table = pd.DataFrame({"n_seeds": cells.size(), "mean": cells.mean(), "std": cells.std()}).reset_index()
        parts.append(table.sort_values(["mean", "variant"], ascending=[False, True]))
    parts[1] = parts[1].assign(n_seeds=0, std=math.nan)
    return pd.concat(parts, ignore_index=True)[columns]
