"""One way to merge a training recipe from its layers, for ``zoo train`` and ``zoo bench`` alike.

A recipe has three tables: ``train`` (``zoo.training.TrainConfig`` fields), ``model`` (model options) and
``dataset`` (dataset options). Layers are merged in order, later winning key by key: the defaults (a bench
profile), then a config file's ``[train]``/``[model]``/``[dataset]`` tables, then the command line.
:func:`recipe_flags_layer` turns command-line values into a layer the same way for both commands, so a flag means the
same thing wherever it is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zoo.errors import OptionError
from zoo.options import parse_assignments

if TYPE_CHECKING:
    from zoo.plan import Plan

__all__ = ["TABLES", "RECIPE_FLAGS", "PLAN_MODES", "PLAN_OPTIMIZER", "merge_recipe", "recipe_flags_layer", "file_layer",
           "plan_layer"]

TABLES = ("train", "model", "dataset")
# command-line recipe values that go to the ``train`` table as given (``zoo train`` and ``zoo bench`` share them)
RECIPE_FLAGS = ("epochs", "max_steps", "batch_size", "image_size", "eval_image_size", "lr", "weight_decay",
                "optimizer", "schedule", "loss", "augment", "val_every", "select_metric", "grad_clip", "device",
                "precision", "num_workers", "channels_last", "compile", "deterministic", "tiled", "sync_bn",
                "patch_size", "sampling", "foreground_share", "foreground_classes", "scale_jitter", "input_scale",
                "eval_window", "eval_overlap", "eval_blend")

Layer = Mapping[str, Mapping[str, Any]]
PLAN_MODES = ("auto", "none")

#: what a planned recipe trains with: the settings that reached test Dice 0.773 on DRIVE (issue 17)
PLAN_OPTIMIZER: dict[str, Any] = {"optimizer": "adamw", "schedule": "cosine", "lr": 3e-3}


def plan_layer(plan: Plan, *, roi_option: str | None = None) -> dict[str, Any]:
    """The ``TrainConfig`` settings a :class:`~zoo.plan.Plan` sets: the plan's layer of a recipe.

    It sits under explicit settings (a config file, flags): ``merge_recipe({"train": layer}, file, flags)``.

    Args:
        plan: from :func:`zoo.planner.plan_recipe` (or ``zoo.planning.plan_dataset(...).plan``).
        roi_option: the dataset builder's region-of-interest option (``fov`` or ``roi``, see
            ``zoo.planning.roi_option``); when the plan scores inside a region of interest, the layer sets
            ``dataset_options = {roi_option: True}``.

    Returns:
        ``TrainConfig`` field -> value: ``patch_size``, ``batch_size``, ``sampling``, ``foreground_share``,
        ``foreground_classes``, ``augment`` (a step list such as ``hflip+vflip+rot90``, or ``none``),
        ``scale_jitter``, ``input_scale`` (the plan's resize), ``loss``, ``max_steps`` (the resolved budget),
        ``eval_image_size="native"``, ``tiled`` (sliding evaluation), ``eval_window``, ``eval_overlap``,
        ``eval_blend``, :data:`PLAN_OPTIMIZER`, and ``dataset_options`` when ``roi_option`` applies.
    """
    aug, ev, sampling = plan.augmentation, plan.evaluation, plan.sampling
    steps = [name for name, on in (("hflip", aug.hflip), ("vflip", aug.vflip), ("rot90", aug.rot90)) if on]
    jitter = tuple(aug.scale_jitter) if aug.scale_jitter and tuple(aug.scale_jitter) != (1.0, 1.0) else None
    layer: dict[str, Any] = {
        "patch_size": tuple(plan.patch_size), "batch_size": plan.batch_size, "sampling": sampling.mode,
        "foreground_share": sampling.foreground_share, "foreground_classes": tuple(sampling.foreground_classes),
        "augment": "+".join(steps) or "none", "scale_jitter": jitter, "input_scale": plan.resize,
        "loss": plan.loss, "max_steps": plan.budget.steps, "eval_image_size": "native",
        "tiled": ev.mode == "sliding", "eval_window": tuple(ev.window), "eval_overlap": ev.overlap,
        "eval_blend": ev.blend, **PLAN_OPTIMIZER,
    }
    if ev.roi and roi_option:
        layer["dataset_options"] = {roi_option: True}
    return layer


def merge_recipe(*layers: Layer | None) -> dict[str, dict[str, Any]]:
    """Merge recipe layers in order (later wins, key by key within each table).

    Args:
        layers: mappings with any of the tables ``train``, ``model``, ``dataset``; ``None`` layers are skipped.

    Returns:
        ``{"train": {...}, "model": {...}, "dataset": {...}}`` (fresh dicts).

    Raises:
        OptionError: a layer holds a table other than the three.
    """
    merged: dict[str, dict[str, Any]] = {table: {} for table in TABLES}
    for layer in layers:
        if not layer:
            continue
        unknown = sorted(set(layer) - set(TABLES))
        if unknown:
            raise OptionError(f"unknown recipe table(s) {unknown}; use {', '.join(f'[{t}]' for t in TABLES)}")
        for table in TABLES:
            merged[table].update(layer.get(table) or {})
    return merged


def file_layer(data: Mapping[str, Any], *, source: str) -> dict[str, dict[str, Any]]:
    """The recipe tables of a config file (``zoo train --config``), refusing any other table."""
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise OptionError(f"config {source!r}: unknown table(s) {unknown}; use [train], [model], [dataset]")
    tables = {table: _table(data.get(table), f"[{table}]", source) for table in TABLES}
    for table in ("model", "dataset"):  # [train] may also carry model_options / dataset_options
        _table(tables["train"].get(f"{table}_options"), f"[train] {table}_options", source)
    return tables


def _table(value: Any, what: str, source: str) -> dict[str, Any]:
    """A TOML table as a fresh dict (absent: empty); anything else is an ``OptionError`` naming it."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OptionError(f"config {source!r}: {what} must be a table of settings, not {value!r}")
    return dict(value)


def _eval_image_size(value: Any) -> int | str:
    if isinstance(value, str) and value not in ("native", "upsampled"):
        try:
            return int(value)
        except ValueError:
            raise OptionError(f"--eval-image-size {value!r} is not a number, 'native' or 'upsampled'") from None
    return value


def recipe_flags_layer(values: Mapping[str, Any], *, model_opt: Sequence[str] = (), dataset_opt: Sequence[str] = (),
                metrics: str | None = None, width: int | None = None) -> dict[str, dict[str, Any]]:
    """A recipe layer from command-line values.

    Args:
        values: flag name -> value for names in :data:`RECIPE_FLAGS`; ``None`` means "not given" and is
            dropped, and a switch given as ``False`` is dropped too (switches only turn a setting on).
        model_opt: ``K=V`` items of ``--model-opt``.
        dataset_opt: ``K=V`` items of ``--dataset-opt``.
        metrics: ``--metrics a,b``.
        width: ``--width``, the model option every built-in U-Net takes.

    Returns:
        A layer for :func:`merge_recipe`.
    """
    train: dict[str, Any] = {}
    for name, value in values.items():
        if name not in RECIPE_FLAGS:
            raise OptionError(f"{name!r} is not a recipe setting; valid: {', '.join(RECIPE_FLAGS)}")
        if value is None or value is False:
            continue
        train[name] = _eval_image_size(value) if name == "eval_image_size" else value
    if metrics:
        train["metrics"] = tuple(m.strip() for m in metrics.split(",") if m.strip())
    model = parse_assignments(model_opt)
    if width is not None:
        model["width"] = width
    return {"train": train, "model": model, "dataset": parse_assignments(dataset_opt)}


def _route_options(options: Mapping[str, Any], model: str, dataset: str, reg: Any) -> dict[str, dict[str, Any]]:
    """Send each leftover ``--name value`` to the model if its builder takes it, else to the dataset."""
    from zoo.options import format_options, option_defaults
    from zoo.registry import MODEL_RESERVED

    model_opts = option_defaults(reg.models.get(model).builder, exclude=MODEL_RESERVED)
    data_opts = option_defaults(reg.datasets.get(dataset).builder)
    layer: dict[str, dict[str, Any]] = {"model": {}, "dataset": {}}
    for name, value in options.items():
        if name not in model_opts and name not in data_opts:
            raise OptionError(f"unknown option --{name.replace('_', '-')}: model {model!r} takes "
                              f"{format_options(model_opts) or 'none'}; dataset {dataset!r} takes "
                              f"{format_options(data_opts) or 'none'}")
        layer["model" if name in model_opts else "dataset"][name] = value
    return layer


def _planned(merged: dict[str, dict[str, Any]], explicit: set[str], *, budget: str | None,
             registries: Any) -> dict[str, dict[str, Any]]:
    """The merged recipe with the dataset's plan under the ``explicit`` settings, and its record in ``plan``."""
    from zoo.bench.planned import planned_recipe  # one rule for zoo train and zoo bench
    from zoo.planner import DEFAULT_BUDGET
    from zoo.planning import plan_dataset

    train = merged["train"]
    model, options = train["model"], merged["model"]
    dp = plan_dataset(train["dataset"], models=[(model, options)], budget=budget or DEFAULT_BUDGET,
                      dataset_options=merged["dataset"], device=str(train.get("device", "auto")),
                      registries=registries)
    settings, record = planned_recipe(train, sorted(explicit), dp, model=model, model_options=options)
    return {"train": {**settings, "plan": record}, "model": dict(options),
            "dataset": {**dp.dataset_options, **merged["dataset"]}}


def train_config(*, file: Mapping[str, Any] | None = None, flags: Layer | None = None,
                 options: Mapping[str, Any] | None = None, source: str = "--config", registries: Any = None,
                 plan: str = "none", budget: str | None = None) -> Any:
    """The ``zoo.training.TrainConfig`` of one run: a config file's tables, overridden by the command line.

    Args:
        file: what a recipe TOML file holds (``[train]``, ``[model]``, ``[dataset]``).
        flags: the command line as a layer (:func:`recipe_flags_layer`), including ``train.model``/``train.dataset``.
        options: leftover ``--name value`` options, routed to the model when its builder takes them, else to the
            dataset.
        source: how to name the file in errors.
        registries: resolves the model and dataset for routing (default: the installed plugins).
        plan: ``auto``: the dataset's plan (:func:`plan_layer`, ``zoo.planning.plan_dataset``) is a layer under
            the file and the command line; explicit settings that replace a planned value are recorded in
            ``TrainConfig.plan["overrides"]``. ``none``: no plan.
        budget: the planned training budget (``"135 tflops"``; default the planner's). It is resolved into
            ``max_steps`` at the run's own patch and batch, unless ``epochs`` or ``max_steps`` is explicit.

    Raises:
        OptionError: no model or dataset, an unknown table, option or setting, or plan mode.
    """
    if plan not in PLAN_MODES:
        raise OptionError(f"plan={plan!r} is not one of {', '.join(PLAN_MODES)}")
    from zoo.registry import resolve
    from zoo.training import TrainConfig  # imports torch: only when a run is configured

    base = file_layer(file or {}, source=source)
    for table in ("model", "dataset"):  # [train] may also carry model_options / dataset_options
        base[table] = {**base[table], **base["train"].pop(f"{table}_options", {})}
    merged = merge_recipe(base, flags)
    for name in ("model", "dataset"):
        if not merged["train"].get(name):
            raise OptionError(f"zoo train needs --{name} (or {name} = ... in the [train] table of {source})")
    routed = _route_options(options or {}, merged["train"]["model"], merged["train"]["dataset"],
                            resolve(registries))
    merged = merge_recipe(base, routed, flags)
    if plan == "auto":
        explicit = set(base["train"]) | set((flags or {}).get("train") or {})
        merged = _planned(merged, explicit, budget=budget, registries=registries)
    train = merged["train"]
    if "metrics" in train:
        train["metrics"] = tuple(train["metrics"])
    if "eval_image_size" in train:
        train["eval_image_size"] = _eval_image_size(train["eval_image_size"])
    return TrainConfig.from_dict({**train, "model_options": merged["model"], "dataset_options": merged["dataset"]})
