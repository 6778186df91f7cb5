"""Planned recipes in a bench grid: one plan per dataset, the budget matched per model, overrides recorded.

The layers of a planned cell's recipe, last wins: the profile, the dataset's plan (:mod:`zoo.planning`), the
config file, the command line, the option axes. A setting given explicitly (config, flags, axes) that the plan
also sets is an *override*: the cell records its name, so a reader sees where a cell left its plan.

The budget (the profile's, ``--budget``, or the profile's budget for that dataset) is resolved per cell at the
cell's own patch and batch with the cell's own model and options: under a compute budget every cell of a
dataset gets the same training compute, so a model with 2.4x the GMACs trains 2.4x fewer steps. An explicit
``epochs`` or ``max_steps`` replaces the budget (and is recorded as an override).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zoo.budget import Budget
from zoo.errors import OptionError, check_choice

if TYPE_CHECKING:
    from zoo.bench.profiles import Profile
    from zoo.planning import DatasetPlan
    from zoo.registry import Registries

__all__ = ["PLAN_MODES", "plan_mode", "grid_budgets", "plan_datasets", "planned_recipe", "budgeted_recipe", "plan_layer_of"]

PLAN_MODES = ("auto", "none")
_BUDGET_KEYS = ("epochs", "max_steps")
VALIDATIONS = 20  # a planned cell validates (and may select a new best checkpoint) about this many times


def plan_mode(prof: Profile, config: Mapping[str, Any], plan: str | None) -> str:
    """``auto`` or ``none``: the flag, else the config's ``plan``, else the profile's choice."""
    return check_choice("plan", plan or config.get("plan") or ("auto" if prof.planned else "none"), PLAN_MODES)


def grid_budgets(prof: Profile, config: Mapping[str, Any], mode: str, budget: str | None,
             datasets: Sequence[str]) -> dict[str, str]:
    """Each dataset's budget (flag < config < profile; an unplanned grid only takes a flag or config one), or
    ``{}`` for an unplanned grid without one (its steps or epochs are as the recipe says)."""
    given = budget if budget is not None else config.get("budget")
    if mode == "none" and not given:
        return {}
    per_dataset = given if isinstance(given, Mapping) else {}
    out = {}
    for name in datasets:
        value = per_dataset.get(name) if per_dataset else given
        if mode == "auto":
            value = value or prof.dataset_budgets.get(name) or prof.budget
        if not value:
            raise OptionError(f"dataset {name!r}: a planned grid needs a budget; pass --budget (e.g. "
                              f"'135 tflops', '2000 steps') or set budget in the config")
        out[name] = str(Budget.parse(str(value)))
    return out


def plan_layer_of(dp: DatasetPlan) -> dict[str, Any]:
    """The training settings the dataset's plan sets (``zoo.recipe.plan_layer``), without dataset options."""
    from zoo.recipe import plan_layer

    layer = dict(plan_layer(dp.plan))
    layer.pop("dataset_options", None)
    layer.pop("max_steps", None)  # resolved per cell (planned_recipe)
    return layer


def plan_datasets(datasets: Sequence[str], models: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]], *,
                  dataset_options: Mapping[str, Mapping[str, Any]], budgets: Mapping[str, str], device: str,
                  min_steps: int | None, registries: Registries) -> dict[str, DatasetPlan]:
    """One :class:`~zoo.planning.DatasetPlan` per dataset (``models[dataset]``: ``(name, options)`` pairs as built
    on that dataset, the first the reference)."""
    from zoo.planning import plan_dataset

    return {name: plan_dataset(name, models=models[name], budget=budgets[name],
                               dataset_options=dataset_options[name], device=device, registries=registries,
                               min_steps=min_steps)
            for name in datasets}


def _patch(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, str):
        h, _, w = value.lower().partition("x")
        return int(h), int(w or h)
    h, w = value
    return int(h), int(w)


def _val_every(steps: int, batch_size: int, items: int) -> int:
    """Epochs between validations so that a run of ``steps`` validates about :data:`VALIDATIONS` times (a
    small train split makes an epoch a step or two, and validating at native resolution after each would
    cost more than the training)."""
    per_epoch = items // batch_size if items > batch_size else 1  # the loader drops an incomplete last batch
    epochs = math.ceil(steps / max(1, per_epoch))
    return max(1, epochs // VALIDATIONS)


def planned_recipe(train: Mapping[str, Any], explicit: Sequence[str], dp: DatasetPlan, *, model: str,
                   model_options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A planned cell's training settings, and what its record keeps of the plan.

    Args:
        train: the cell's settings without the plan (profile, config, flags and axes merged).
        explicit: the keys of ``train`` given explicitly (config, flags, axes), which beat the plan's.
        dp: the dataset's plan.
        model, model_options: the cell's model, as built.

    Returns:
        ``(settings, plan_record)``: the settings (the plan's under the explicit ones, ``max_steps`` from the
        budget unless ``epochs``/``max_steps`` is explicit, ``val_every`` for about :data:`VALIDATIONS`
        validations unless explicit) and ``Plan.to_dict()`` with this cell's resolved
        ``budget`` and its ``overrides`` (explicit keys that replaced a planned value, sorted).
    """
    layer = plan_layer_of(dp)
    settings = {**train, **{k: v for k, v in layer.items() if k not in explicit}}
    overrides = sorted(k for k, v in layer.items() if k in explicit and train.get(k) != v)
    record = dp.plan.to_dict()
    if any(k in explicit for k in _BUDGET_KEYS):
        overrides += [k for k in _BUDGET_KEYS if k in explicit]
        record["budget"] = None
    else:
        patch = _patch(settings.get("patch_size") or dp.plan.patch_size)
        resolved = dp.resolve(dp.gmacs(model, model_options, patch), int(settings["batch_size"]))
        settings["max_steps"] = resolved.steps
        record["budget"] = resolved.to_dict()
    if "val_every" not in explicit and settings.get("max_steps"):
        settings["val_every"] = _val_every(int(settings["max_steps"]), int(settings["batch_size"]),
                                           dp.fingerprint.items)
    record["overrides"] = sorted(overrides)
    record["dataset_options_set"] = dict(dp.set_options)
    return settings, record


def budgeted_recipe(train: Mapping[str, Any], explicit: Sequence[str], dp: DatasetPlan, *, model: str,
                    model_options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An unplanned cell (``--plan none``) given a budget: its own recipe, with ``max_steps`` resolved from the
    budget at its ``image_size`` squares and batch, so the old resize recipe can be compared at equal compute.

    Returns:
        ``(settings, plan_record)`` as :func:`planned_recipe`, the record holding only ``budget`` and
        ``overrides`` (``version`` None: not planned).
    """
    settings = dict(train)
    record: dict[str, Any] = {"version": None, "budget": None, "overrides": []}
    if any(k in explicit for k in _BUDGET_KEYS):
        record["overrides"] = [k for k in _BUDGET_KEYS if k in explicit]
        return settings, record
    size = int(settings["image_size"])
    resolved = dp.resolve(dp.gmacs(model, model_options, (size, size)), int(settings["batch_size"]))
    settings["max_steps"] = resolved.steps
    record["budget"] = resolved.to_dict()
    return settings, record
