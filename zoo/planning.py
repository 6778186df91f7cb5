"""Planning a dataset for some models: build, fingerprint, price and plan once, then match each model's budget.

:mod:`zoo.planner` holds the rules (fingerprint + cost + budget -> :class:`~zoo.plan.Plan`); this module gathers
their inputs from the registry, shared by ``zoo plan``, ``zoo train --plan auto`` and ``zoo bench``:

- the dataset is built with its region of interest switched on when its builder takes a ``roi`` or ``fov``
  option, the caller did not set it, and the data has one (a build with it on that fails, or loses training
  items, leaves it off);
- the fingerprint (:func:`zoo.fingerprint.fingerprint_dataset`, cached) of its train split;
- the reference model's cost ``(h, w) -> GMACs`` (counted once per size) and the stride the patch must be a
  multiple of: the least common multiple of every compared model's stride (:func:`zoo.costs.model_stride`),
  so one patch suits them all;
- the dataset spec's ``plan_hints``.

One plan per dataset fixes the patch, batch, sampling, augmentation and evaluation for every model; the budget
is then resolved per model at that patch (:meth:`DatasetPlan.resolve`), so under a compute budget a model with
2.4x the GMACs trains 2.4x fewer steps on the same patches (equal training compute, not equal steps).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.budget import Budget, ResolvedBudget, resolve_budget
from zoo.errors import ZooError

if TYPE_CHECKING:
    from torch import nn

    from zoo.fingerprint import Fingerprint
    from zoo.plan import Plan
    from zoo.registry import Registries

__all__ = ["ROI_OPTIONS", "DatasetPlan", "ModelCost", "PriceList", "plan_dataset", "roi_option", "device_kind",
           "dataset_with_roi"]

ROI_OPTIONS = ("roi", "fov")  # dataset options that switch on a region of interest (scored inside it only)


class ModelCost:
    """GMACs of one forward pass of ``model`` on one ``h x w`` image, counted once per size."""

    def __init__(self, model: nn.Module, in_channels: int) -> None:
        from zoo.costs import model_stride

        self.model, self.in_channels, self.stride = model, in_channels, model_stride(model)
        self._counted: dict[tuple[int, int], float] = {}

    def __call__(self, h: int, w: int) -> float:
        from zoo.costs import count_gmacs

        if (h, w) not in self._counted:
            self._counted[h, w] = count_gmacs(self.model, self.in_channels, (h, w))
        return self._counted[h, w]


class PriceList:
    """:class:`ModelCost` per (model, options) for one dataset's channels and classes, each built once."""

    def __init__(self, in_channels: int, num_classes: int, registries: Registries | None) -> None:
        self.in_channels, self.num_classes, self.registries = in_channels, num_classes, registries
        self._costs: dict[str, ModelCost] = {}

    def cost(self, model: str, options: Mapping[str, Any]) -> ModelCost:
        """The cost of ``model`` built with ``options``."""
        from zoo.registry import build_model

        key = json.dumps([model, dict(options)], sort_keys=True, default=str)
        if key not in self._costs:
            built = build_model(model, in_channels=self.in_channels, num_classes=self.num_classes,
                                registries=self.registries, **options)
            self._costs[key] = ModelCost(built, self.in_channels)
        return self._costs[key]


@dataclass(frozen=True)
class DatasetPlan:
    """A dataset's plan for a set of models.

    Attributes:
        plan: planned with the reference model (the first one given).
        dataset_options: the options the dataset was planned (and is to be trained) with.
        set_options: the options this module set (the region of interest), a subset of ``dataset_options``.
        fingerprint: the train split's fingerprint.
        budget: the budget every model is matched on.
        train_items: items in the train split (an epoch is one patch per item).
    """

    plan: Plan
    dataset_options: Mapping[str, Any]
    set_options: Mapping[str, Any]
    fingerprint: Fingerprint
    budget: Budget
    tflops_per_second: float | None
    prices: PriceList = field(compare=False, repr=False)

    def gmacs(self, model: str, options: Mapping[str, Any], patch: tuple[int, int] | None = None) -> float:
        """GMACs of ``model`` (with ``options``) on one patch (default: the plan's), each model built once."""
        return self.prices.cost(model, options)(*(patch or self.plan.patch_size))

    def resolve(self, gmacs_per_patch: float, batch_size: int | None = None) -> ResolvedBudget:
        """The budget resolved into steps for a model costing ``gmacs_per_patch`` at the plan's patch."""
        return resolve_budget(self.budget, gmacs_per_image=gmacs_per_patch,
                              batch_size=batch_size or self.plan.batch_size, train_items=self.fingerprint.items,
                              tflops_per_second=self.tflops_per_second)


def device_kind(device: str) -> str:
    """``auto`` -> the kind it picks here (``cuda``, ``mps`` or ``cpu``); ``cuda:1`` -> ``cuda``."""
    if device == "auto":
        from zoo.precision import resolve_device

        return resolve_device("auto").type
    return device.split(":")[0]


def roi_option(builder: Any) -> str | None:
    """The builder's region-of-interest option (:data:`ROI_OPTIONS`), or ``None``."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in ROI_OPTIONS if name in params), None)


def _with_roi(name: str, options: Mapping[str, Any], reg: Registries) -> tuple[Any, dict[str, Any]]:
    """The built dataset, with its region of interest on where the data has one, and the options set here."""
    from zoo.registry import build_dataset

    dataset = build_dataset(name, registries=reg, **options)
    option = roi_option(reg.datasets.get(name).builder)
    if option is None or option in options:
        return dataset, {}
    try:
        with_roi = build_dataset(name, registries=reg, **options, **{option: True})
    except (ZooError, OSError, ValueError):  # no region masks: keep the dataset as it is
        return dataset, {}
    if len(with_roi.split("train")) != len(dataset.split("train")):
        return dataset, {}
    return with_roi, {option: True}


def dataset_with_roi(name: str, options: Mapping[str, Any] | None = None, *,
                     registries: Registries | None = None) -> tuple[Any, dict[str, Any]]:
    """Build dataset ``name`` as :func:`plan_dataset` plans it: with its region of interest switched on where the
    data has one (a ``roi``/``fov`` option given in ``options`` is left as it is).

    Returns:
        The dataset and the options set here (``{}`` or ``{"fov": True}``-like).
    """
    from zoo.registry import resolve

    return _with_roi(name, dict(options or {}), resolve(registries))


def _lcm(values: Sequence[int]) -> int:
    out = 1
    for value in values:
        out = out * value // math.gcd(out, value)
    return out


def plan_dataset(name: str, *, models: Sequence[tuple[str, Mapping[str, Any]]], budget: Budget | str,
                 dataset_options: Mapping[str, Any] | None = None, device: str = "auto",
                 registries: Registries | None = None, min_steps: int | None = None,
                 refresh_fingerprint: bool = False) -> DatasetPlan:
    """Plan dataset ``name`` for ``models`` (``(name, options)`` pairs; the first is the reference).

    Args:
        name: a registered dataset.
        models: the models to be compared, with the options each is built with.
        budget: e.g. ``"135 tflops"`` (see :meth:`zoo.budget.Budget.parse`).
        dataset_options: the dataset's options (a ``roi``/``fov`` option given here is left as it is).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``: the device limits to plan for.
        registries: default: the installed plugins.
        min_steps: see :func:`zoo.planner.plan_recipe` (default: its own).
        refresh_fingerprint: recompute the fingerprint even if cached.

    Raises:
        OptionError / UnknownNameError: a bad budget, name or option; DatasetError: unreadable data.
    """
    from zoo.fingerprint import fingerprint_dataset
    from zoo.planner import DEVICE_LIMITS, plan_recipe
    from zoo.registry import resolve

    reg = resolve(registries)
    budget = Budget.parse(budget) if isinstance(budget, str) else budget
    options = dict(dataset_options or {})
    dataset, set_options = _with_roi(name, options, reg)
    fp = fingerprint_dataset(dataset, refresh=refresh_fingerprint)
    kind = device_kind(device)
    limits = DEVICE_LIMITS.get(kind)
    prices = PriceList(fp.channels, fp.num_classes, reg)
    costs = [prices.cost(m, o) for m, o in models]
    extra = {} if min_steps is None else {"min_steps": min_steps}
    plan = plan_recipe(fp, gmacs=costs[0], model_stride=_lcm([c.stride for c in costs]), budget=budget,
                       device=kind, hints=reg.datasets.get(name).plan_hints, **extra)
    return DatasetPlan(plan, {**options, **set_options}, set_options, fp, budget,
                       limits.tflops_per_second if limits else None, prices)
