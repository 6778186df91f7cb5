"""The per-cell detail views of ``report.html``: recipe, plan with its reasons, environment, training curve,
results, and the status and error of a cell that did not finish (``zoo.bench.page``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo.bench.markdown import fmt
from zoo.bench.page_tables import slug
from zoo.bench.records import CellRecord

__all__ = ["CellView", "Curve", "cell_view"]

_ENVIRONMENT = ("host", "device", "device_name", "precision_mode", "channels_last", "compile", "threads", "allocator",
                "world_size", "zoo_version", "torch_version", "torchvision_version", "cuda_version", "python_version",
                "plugin", "plugin_distribution", "plugin_version", "dataset_fingerprint", "split_source",
                "started_at", "finished_at", "wall_seconds")
_TRAINING = ("epochs_done", "steps_done", "best_epoch", "train_seconds", "train_tflops", "nonfinite_losses",
             "n_parameters", "gmacs", "infer_images_per_s", "infer_latency_ms", "infer_batch_size", "peak_memory_mb",
             "memory_kind", "config_hash")
_WIDTH, _HEIGHT, _PAD = 300.0, 120.0, 8.0


@dataclass(frozen=True)
class Series:
    """One line of a curve panel: its name and SVG polyline points."""

    name: str
    points: str
    css: str


@dataclass(frozen=True)
class Curve:
    """One panel of the training curve (an inline SVG): its lines, value range and the best epoch's x."""

    title: str
    label: str  # what a screen reader hears
    series: Sequence[Series]
    low: str
    high: str
    first_epoch: int
    last_epoch: int
    best_x: float | None = None


@dataclass
class CellView:
    """Everything the detail view of one cell shows (key-value lists are ``(label, text)`` pairs)."""

    id: str
    cell_id: str
    variants: tuple[str, ...]
    status: str
    error: str
    heading: str
    environment: list[tuple[str, str]] = field(default_factory=list)
    recipe: list[tuple[str, str]] = field(default_factory=list)
    training: list[tuple[str, str]] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)
    plan_reasons: list[tuple[str, str]] = field(default_factory=list)
    plan_overrides: str = ""
    plan_json: str = ""
    curves: list[Curve] = field(default_factory=list)


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def _pairs(record: CellRecord, names: Sequence[str]) -> list[tuple[str, str]]:
    return [(name, _show(getattr(record, name))) for name in names if getattr(record, name) is not None]


def _points(history: Sequence[Mapping[str, Any]], key: str, low: float, high: float, first: int, last: int) -> str:
    span_x, span_y = max(last - first, 1), (high - low) or 1.0
    out = []
    for entry in history:
        value, epoch = entry.get(key), entry.get("epoch")
        if isinstance(value, (int, float)) and math.isfinite(value) and isinstance(epoch, int):
            x = _PAD + (epoch - first) / span_x * (_WIDTH - 2 * _PAD)
            y = _HEIGHT - _PAD - (value - low) / span_y * (_HEIGHT - 2 * _PAD)
            out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def _panel(history: Sequence[Mapping[str, Any]], keys: Sequence[str], title: str, cell_id: str) -> Curve | None:
    """One curve panel for the history ``keys`` present (``None`` when none has a finite value)."""
    values = {k: [float(e[k]) for e in history if isinstance(e.get(k), (int, float)) and math.isfinite(e[k])]
              for k in keys}
    values = {k: v for k, v in values.items() if v}
    epochs = [e["epoch"] for e in history if isinstance(e.get("epoch"), int)]
    if not values or not epochs:
        return None
    low, high = min(min(v) for v in values.values()), max(max(v) for v in values.values())
    first, last = min(epochs), max(epochs)
    best = next((e["epoch"] for e in reversed(history) if e.get("is_best") and isinstance(e.get("epoch"), int)), None)
    best_x = None if best is None else _PAD + (best - first) / max(last - first, 1) * (_WIDTH - 2 * _PAD)
    series = [Series(k, _points(history, k, low, high, first, last), f"s{i}") for i, k in enumerate(values)]
    spoken = "; ".join(f"{k} from {fmt(v[0])} to {fmt(v[-1])}" for k, v in values.items())
    label = (f"{title} of {cell_id} over epochs {first} to {last}: {spoken}"
             + (f"; best epoch {best}" if best is not None else ""))
    return Curve(title, label, series, fmt(low), fmt(high), first, last, best_x)


def _curves(record: CellRecord, metric: str) -> list[Curve]:
    panels = (_panel(record.history, ("train_loss", "val_loss"), "Loss", record.cell_id),
              _panel(record.history, (f"val/{metric}",), f"Validation {metric}", record.cell_id))
    return [p for p in panels if p is not None]


def _plan(view: CellView, plan: Mapping[str, Any] | None) -> None:
    if not plan:
        return
    view.plan_reasons = [(str(k), str(v)) for k, v in (plan.get("reasons") or {}).items()]
    overrides = plan.get("overrides")
    view.plan_overrides = ", ".join(map(str, overrides)) if overrides else ""
    view.plan_json = json.dumps({k: v for k, v in plan.items() if k != "reasons"}, indent=1, default=str)


def _results(record: CellRecord, metrics: Sequence[str], main: str) -> list[tuple[str, str]]:
    """Each whole-image metric (per-image mean, then pooled), then the main metric per class (``runs.csv`` has
    every metric per class)."""
    keys = [k for m in metrics for k in (m, f"{m}_pooled") if k in record.metrics]
    keys += sorted(k for k in record.metrics if k.startswith(f"{main}/") and k not in keys)
    return [(k, _show(record.metrics[k])) for k in keys]


def cell_view(record: CellRecord, main: str, metrics: Sequence[str]) -> CellView:
    """The detail view of one cell's record; ``main`` picks the curve's validation metric."""
    score = record.metrics.get(main)
    heading = (f"{record.cell_id}: {record.status}" + (f", {main} {fmt(score)}" if isinstance(score, float) else ""))
    view = CellView(id=f"cell-{slug(record.cell_id)}", cell_id=record.cell_id, variants=(record.variant,),
                    status=record.status, error=record.error or "", heading=heading,
                    environment=_pairs(record, _ENVIRONMENT), training=_pairs(record, _TRAINING),
                    recipe=[(str(k), _show(v)) for k, v in record.config.items()]
                    + [(f"axis {k}", _show(v)) for k, v in record.axes.items()],
                    results=_results(record, metrics, main.split("/")[0]), curves=_curves(record, main.split("/")[0]))
    _plan(view, record.plan)
    return view
