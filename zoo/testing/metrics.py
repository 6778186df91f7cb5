"""The metric contract: hand-computed cases on 24x24 masks (perfect, total miss, empty masks), columns, reset.

``check_metric_plugin`` runs ``METRIC_CHECKS`` on a registered name, a ``MetricSpec`` or a bare builder. What
counts as best, worst and "both empty" comes from the spec's direction unless given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.interfaces import MetricSpec
from zoo.options import validate_options
from zoo.testing.common import CheckResult, resolve_builder, run_checks

if TYPE_CHECKING:
    import torch

    from zoo.interfaces import Metric
    from zoo.registry import Registries


METRIC_SIZE = 24  # hand-made masks: a 7x7 object in a 24x24 image


def _square(top: int, left: int, side: int = 7, *, size: int = METRIC_SIZE, label: int = 1) -> torch.Tensor:
    import torch

    mask = torch.zeros(size, size, dtype=torch.int64)
    mask[top:top + side, left:left + side] = label
    return mask


@dataclass(frozen=True)
class MetricCase:
    """What a metric check needs: the factory, the direction, and the values that define best and worst.

    Attributes:
        label: how messages name the metric, e.g. ``metric 'dice'``.
        name: the metric's name; its class-average column (else the first column is used).
        builder: ``builder(*, num_classes, ignore_index, class_names, **options) -> Metric``.
        options: builder options (already validated).
        higher_is_better: the spec's direction.
        best: the value of a perfect prediction (default 1.0 if higher is better, else 0.0).
        worst: the value of a total miss, or None when unbounded (then only "worse than best" is checked).
        both_empty: the value when target and prediction are both empty: NaN (undefined) unless the metric
            scores the background too (pixel accuracy: 1.0).
    """

    label: str
    name: str
    builder: Callable[..., Metric]
    options: Mapping[str, Any] = field(default_factory=dict)
    higher_is_better: bool = True
    best: float = 1.0
    worst: float | None = 0.0
    both_empty: float = float("nan")

    def build(self, *, num_classes: int = 2, ignore_index: int | None = None) -> Metric:
        """A fresh metric for ``num_classes`` classes, with no class names."""
        return self.builder(num_classes=num_classes, ignore_index=ignore_index, class_names=None, **self.options)

    def main(self, values: Mapping[str, Any]) -> Any:
        """The class-average column: the one under the metric's name, else the first."""
        assert values, "the metric returned no columns"
        return values[self.name] if self.name in values else next(iter(values.values()))

    def score(self, pred: torch.Tensor, target: torch.Tensor, **build: Any) -> tuple[float, float]:
        """(per-image value, pooled value) of the main column for one image, on a fresh metric."""
        metric = self.build(**build)
        per_image = self.main(metric.update(pred[None], target[None]))
        return float(per_image[0]), float(self.main(metric.compute()))

    def is_worse(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly worse than ``b`` in the metric's direction."""
        return a < b if self.higher_is_better else a > b


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def check_perfect_prediction(case: MetricCase) -> None:
    """A prediction equal to the target scores ``best``, per image and pooled, binary and with 3 classes.

    A binary-only metric may refuse ``num_classes=3`` with a ``ZooError`` (an ``OptionError`` naming the reason).
    """
    from zoo.errors import ZooError

    binary = _square(4, 4)
    multi = binary + _square(14, 12, label=2)
    for target, k in ((binary, 2), (multi, 3)):
        try:
            case.build(num_classes=k)
        except ZooError:
            if k == 2:
                raise
            continue
        per_image, pooled = case.score(target, target, num_classes=k)
        assert _same(per_image, case.best) and _same(pooled, case.best), (
            f"num_classes={k}: a perfect prediction scores {per_image} per image and {pooled} pooled, "
            f"expected {case.best}")


def check_total_miss(case: MetricCase) -> None:
    """Missing the object (far away, or every pixel wrong) scores worse than best, and the worst value."""
    target = _square(4, 4)
    misses = {"an object far from the target's": _square(15, 15), "the complement of the target": 1 - target}
    values = {}
    for what, pred in misses.items():
        per_image, pooled = case.score(pred, target)
        assert _same(per_image, pooled), f"{what}: per-image {per_image} but pooled {pooled} for one image"
        assert case.is_worse(per_image, case.best), (
            f"predicting {what} scores {per_image}, not worse than a perfect prediction ({case.best})")
        values[what] = per_image
    if case.worst is not None:
        extreme = min(values.values()) if case.higher_is_better else max(values.values())
        assert _same(extreme, case.worst), (
            f"a total miss scores {values}; expected {case.worst} for at least one of them")


def check_both_empty(case: MetricCase) -> None:
    """Empty target and empty prediction give ``both_empty`` (NaN: undefined, never a silent 0 or 1)."""
    empty = _square(0, 0, side=0)
    per_image, pooled = case.score(empty, empty)
    assert _same(per_image, case.both_empty) and _same(pooled, case.both_empty), (
        f"an empty prediction of an empty target scores {per_image} per image and {pooled} pooled, expected "
        f"{case.both_empty} (the value is undefined: report NaN so that averages leave it out)")


def check_empty_target(case: MetricCase) -> None:
    """A non-empty prediction of an empty target is NaN or a finite value worse than best, never best."""
    per_image, pooled = case.score(_square(4, 4), _square(0, 0, side=0))
    for what, value in (("per image", per_image), ("pooled", pooled)):
        assert math.isnan(value) or (math.isfinite(value) and case.is_worse(value, case.best)), (
            f"a false positive on an empty target scores {value} {what}; expected NaN or a finite value worse "
            f"than {case.best}")


def check_columns(case: MetricCase) -> None:
    """``update`` returns float ``(N,)`` tensors per image, independent of the batch; ``compute`` the same keys."""
    import torch

    targets = torch.stack([_square(4, 4), _square(10, 12)])
    preds = torch.stack([_square(5, 4), _square(0, 0, side=0)])
    metric = case.build()
    batch = metric.update(preds, targets)
    pooled = metric.compute()
    assert set(batch) == set(pooled), f"update() columns {sorted(batch)} but compute() columns {sorted(pooled)}"
    for column, values in batch.items():
        assert isinstance(values, torch.Tensor) and values.is_floating_point() and tuple(values.shape) == (2,), (
            f"update()[{column!r}] is {values!r}; expected a float tensor (N,) = (2,)")
        assert isinstance(float(pooled[column]), float)
        for i in range(2):
            alone = case.build().update(preds[i:i + 1], targets[i:i + 1])[column]
            assert _same(float(values[i]), float(alone[0])), (
                f"{column!r} of image {i} is {float(values[i])} in a batch but {float(alone[0])} alone")


def check_reset(case: MetricCase) -> None:
    """After ``reset``, ``compute`` reflects only what was seen since."""
    target = _square(4, 4)
    metric = case.build()
    metric.update(target[None], target[None])
    metric.reset()
    metric.update(_square(6, 6)[None], target[None])
    fresh = case.build()
    fresh.update(_square(6, 6)[None], target[None])
    after, expected = case.main(metric.compute()), case.main(fresh.compute())
    assert _same(float(after), float(expected)), f"after reset compute() is {after}, a fresh metric gives {expected}"


def check_ignore_index(case: MetricCase) -> None:
    """Pixels whose target is ``ignore_index`` count nowhere: errors there leave a perfect score perfect."""
    target = _square(4, 4)
    pred = target.clone()
    target[12:15] = 255
    pred[12:15] = 1  # wrong wherever the target is void; must not matter
    per_image, pooled = case.score(pred, target, ignore_index=255)
    assert _same(per_image, case.best) and _same(pooled, case.best), (
        f"errors only on ignore_index pixels score {per_image} per image and {pooled} pooled, expected "
        f"{case.best}")


METRIC_CHECKS: tuple[Callable[[MetricCase], None], ...] = (
    check_perfect_prediction,
    check_total_miss,
    check_both_empty,
    check_empty_target,
    check_columns,
    check_reset,
    check_ignore_index,
)

_UNSET: Any = object()


def _metric_case(metric: str | MetricSpec | Callable[..., Any], *, registries: Registries | None,
                 options: Mapping[str, Any] | None, higher_is_better: bool | None, best: float | None,
                 worst: float | None, both_empty: float) -> MetricCase:
    """The case for a name, spec or builder, with the spec's direction unless ``higher_is_better`` is given."""
    from zoo.registry import METRIC_RESERVED

    spec, builder, label = resolve_builder(metric, kind="metric", spec_type=MetricSpec, registries=registries)
    name = spec.name if spec is not None else getattr(builder, "__name__", "metric")
    clean = validate_options(builder, options or {}, what=label, exclude=METRIC_RESERVED)
    if higher_is_better is None:
        higher_is_better = spec.higher_is_better if spec is not None else True
    if best is None:
        best = 1.0 if higher_is_better else 0.0
    if worst is _UNSET:
        worst = 0.0 if higher_is_better else None
    return MetricCase(label, name, builder, clean, higher_is_better, best, worst, both_empty)


def check_metric_plugin(
    name_or_builder: str | MetricSpec | Callable[..., Any], *, registries: Registries | None = None,
    options: Mapping[str, Any] | None = None, higher_is_better: bool | None = None, best: float | None = None,
    worst: float | None = _UNSET, both_empty: float = float("nan"),
    checks: Sequence[Callable[[MetricCase], None]] = METRIC_CHECKS, raise_on_failure: bool = True,
) -> list[CheckResult]:
    """Run the metric contract checks (hand-computed cases on 24x24 masks) on a metric.

    Args:
        name_or_builder: a registered metric name, a ``MetricSpec``, or a builder
            ``(*, num_classes, ignore_index, class_names, **options) -> Metric``.
        registries: where to look the name up; default: the installed plugins.
        options: builder options (default: the builder's defaults).
        higher_is_better: default: the spec's (True for a bare builder).
        best: a perfect prediction's value; default 1.0 when higher is better, else 0.0.
        worst: a total miss's value; default 0.0 when higher is better, else None (unbounded).
        both_empty: the value for an empty target and prediction; NaN unless the metric scores background.
        checks: the checks to run (default: all of ``METRIC_CHECKS``).
        raise_on_failure: raise ``CheckFailed`` after the run if any check failed.

    Returns:
        One ``CheckResult`` per check, in order.

    Raises:
        CheckFailed: some check failed and ``raise_on_failure`` is set; the message names metric and checks.
        UnknownNameError, OptionError: an unknown metric name or option.
    """
    case = _metric_case(name_or_builder, registries=registries, options=options, higher_is_better=higher_is_better,
                        best=best, worst=worst, both_empty=both_empty)
    return run_checks(checks, case, case.label, raise_on_failure)

