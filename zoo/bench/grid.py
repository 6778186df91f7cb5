"""Benchmark plans: budget profiles, plans, and the expansion of a plan into cells (the TOML config file is
read by :mod:`zoo.bench.plan_config`).

A *plan* is what the user asked for (models x datasets x seeds x option axes, a budget profile and overrides),
parsed once at the edge into a :class:`BenchPlan`. :func:`expand_grid` turns it into :class:`Cell` objects, each
holding the complete, JSON-serialisable training recipe (``zoo.training.TrainConfig`` keyword arguments) and a
hash of it. Every cell of a plan gets the same recipe except for its own model, dataset, seed and axis values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.bench.plan_config import parse_axes, parse_min_steps, parse_seeds, split_list
from zoo.bench.planned import grid_budgets, plan_mode
from zoo.bench.profiles import DEFAULT_SEEDS, PROFILES, Profile
from zoo.bench.shards import parse_shard, select_shard  # re-exported
from zoo.errors import OptionError, check_choice
from zoo.options import option_defaults, validate_options
from zoo.recipe import recipe_flags_layer, merge_recipe
from zoo.registry import MODEL_RESERVED

if TYPE_CHECKING:
    from zoo.planning import DatasetPlan
    from zoo.registry import Registries

__all__ = ["Profile", "PROFILES", "BenchPlan", "Cell", "make_plan", "expand_grid",
           "select_shard", "parse_shard", "config_hash", "DEFAULT_DATASETS", "DEFAULT_SEEDS"]

DEFAULT_DATASETS = ("shapes",)


@dataclass(frozen=True)
class BenchPlan:
    """A parsed benchmark request (see ``zoo bench --help``)."""

    name: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    profile: str
    train: Mapping[str, Any]
    model_options: Mapping[str, Mapping[str, Any]]  # "*" -> every model; name -> that model
    dataset_options: Mapping[str, Mapping[str, Any]]  # "*" -> every dataset; name -> that dataset
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    cell_timeout: float | None = None
    infer_repeats: int = 10
    deploy_speed: bool = False  # also time each cell's model exported to ONNX, in ONNX Runtime
    budgets: Mapping[str, str] = field(default_factory=dict)  # dataset -> budget; empty: steps/epochs as given
    min_steps: int | None = None  # the fewest steps a compute budget buys (the profile's, or the config's)
    plan_mode: str = "none"  # "auto": each dataset's recipe is planned
    explicit: tuple[str, ...] = ()  # training settings given in the config file or on the command line
    dataset_plans: Mapping[str, DatasetPlan] = field(default_factory=dict, compare=False, repr=False)
    cells: tuple[Cell, ...] = field(default=(), compare=False, repr=False)  # expanded once, by make_plan

    @property
    def planned(self) -> bool:
        """Whether each dataset's recipe is planned (``--plan auto``)."""
        return self.plan_mode == "auto"

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (written to ``plan.json``)."""
        return {"name": self.name, "models": list(self.models), "datasets": list(self.datasets),
                "seeds": list(self.seeds), "profile": self.profile, "train": dict(self.train),
                "model_options": {k: dict(v) for k, v in self.model_options.items()},
                "dataset_options": {k: dict(v) for k, v in self.dataset_options.items()},
                "axes": {k: list(v) for k, v in self.axes}, "cell_timeout": self.cell_timeout,
                "infer_repeats": self.infer_repeats, "deploy_speed": self.deploy_speed, "budgets": dict(self.budgets), "plan_mode": self.plan_mode,
                **({"min_steps": self.min_steps} if self.min_steps is not None else {}),
                "plans": {k: dp.plan.to_dict() for k, dp in self.dataset_plans.items()}}


@dataclass(frozen=True)
class Cell:
    """One (model, dataset, seed, axis values) run with its complete recipe.

    Attributes:
        config: ``TrainConfig`` keyword arguments (JSON-serialisable).
        axes: ``(name, value)`` for each option axis of the plan.
        infer_repeats: timed repeats of the inference benchmark.
        runtime: what the recipe's ``device`` and ``precision`` resolved to on the host that planned it
            (``zoo.precision.runtime_identity``: ``{"device": "cuda", "precision": "bf16"}``); part of the
            hash, so a GPU run never skips, continues or mixes with a CPU run's cells. ``None`` in cells
            written before it was recorded.
    """

    model: str
    dataset: str
    seed: int
    config: Mapping[str, Any]
    axes: tuple[tuple[str, Any], ...] = ()
    infer_repeats: int = 10
    deploy_speed: bool = False
    plan: Mapping[str, Any] | None = field(default=None, compare=False)  # the dataset's plan, as applied here
    runtime: Mapping[str, str] | None = None

    @property
    def variant(self) -> str:
        """The model plus its axis values, e.g. ``unet[width=16]``: what the leaderboard ranks."""
        if not self.axes:
            return self.model
        return f"{self.model}[{','.join(f'{k}={_fmt(v)}' for k, v in self.axes)}]"

    @property
    def cell_id(self) -> str:
        """A file-name-safe unique id: ``shapes__unet__width=16__s0``."""
        parts = [self.dataset, self.model, *(f"{k}={_fmt(v)}" for k, v in self.axes), f"s{self.seed}"]
        return re.sub(r"[^A-Za-z0-9._=+-]", "_", "__".join(parts))

    @property
    def config_hash(self) -> str:
        """Hash of the recipe, the inference settings and the resolved runtime, recorded with the result."""
        payload: dict[str, Any] = {"config": dict(self.config), "infer_repeats": self.infer_repeats}
        if self.deploy_speed:  # only then, so hashes of grids that never measured it stay as they were
            payload["deploy_speed"] = True
        if self.runtime is not None:
            payload["runtime"] = dict(self.runtime)
        return config_hash(payload)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "seed": self.seed, "config": dict(self.config),
                "axes": [[k, v] for k, v in self.axes], "infer_repeats": self.infer_repeats,
                "deploy_speed": self.deploy_speed,
                "cell_id": self.cell_id, "variant": self.variant, "config_hash": self.config_hash,
                "plan": None if self.plan is None else dict(self.plan),
                "runtime": None if self.runtime is None else dict(self.runtime)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cell:
        return cls(model=data["model"], dataset=data["dataset"], seed=int(data["seed"]), config=data["config"],
                   axes=tuple((k, _freeze(v)) for k, v in data.get("axes", ())),
                   infer_repeats=int(data.get("infer_repeats", 10)), plan=data.get("plan"),
                   deploy_speed=bool(data.get("deploy_speed", False)),
                   runtime=data.get("runtime"))


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_fmt(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def config_hash(payload: Any) -> str:
    """A 16-hex-digit SHA-256 of a JSON-able payload (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_name(models: Sequence[str], datasets: Sequence[str], profile: str) -> str:
    """``shapes_unet+unet-attn`` (plus ``_PROFILE`` when not the default), shortened with a hash if long."""
    name = f"{'+'.join(datasets)}_{'+'.join(models)}" + ("" if profile == "default" else f"_{profile}")
    name = re.sub(r"[^A-Za-z0-9._+=-]", "_", name)
    if len(name) > 80:
        name = f"{name[:60]}-{config_hash([list(models), list(datasets), profile])[:8]}"
    return name


def make_plan(
    *,
    models: str | Sequence[str] | None,
    datasets: str | Sequence[str] | None = None,
    seeds: str | Sequence[int] | None = None,
    profile: str | None = None,
    config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Mapping[str, Any]] | None = None,
    name: str | None = None,
    cell_timeout: float | None = None,
    plan: str | None = None,
    budget: str | None = None,
    deploy_speed: bool | None = None,
    registries: Registries | None = None,
) -> BenchPlan:
    """Combine profile, config file and command-line values (in that order of precedence, last wins).

    The recipe layers are merged by :func:`zoo.recipe.merge_recipe`, as for ``zoo train``; the grid is expanded
    (and every option validated) once, here, and kept in ``plan.cells``.

    Args:
        models: names or wildcards, ``"unet,unet-attn"`` or a list (required here or in ``config``).
        datasets: default ``shapes``.
        seeds: default the profile's seeds.
        profile: a name in :data:`PROFILES` (default ``default``).
        config: what :func:`load_plan_config` read.
        overrides: recipe values from flags: ``epochs``, ``width``, ``image_size``, ``batch_size``, ``device``,
            ``precision`` (``None`` values are ignored).
        recipe: a recipe layer from the command line (:func:`zoo.recipe.recipe_flags_layer`), applied last.
        plan: ``auto`` plans each dataset's recipe (:mod:`zoo.bench.planned`), ``none`` keeps the profile's
            resize recipe; default: the config's ``plan``, else the profile's choice.
        budget: the training budget of planned cells (default: the config's, else the profile's).
        deploy_speed: also time each cell's model exported to ONNX in ONNX Runtime (default: the config's).
        registries: resolves wildcards and validates names (default: the installed plugins).

    Raises:
        OptionError / UnknownNameError: for anything invalid, naming it.
    """
    from zoo.registry import default_registry

    reg = registries if registries is not None else default_registry()
    config = dict(config or {})
    profile_name = check_choice("profile", profile or config.get("profile") or "default", PROFILES)
    prof = PROFILES[profile_name]

    model_names, dataset_names = _names(models, datasets, config, reg)
    seed_tuple = parse_seeds(seeds if seeds is not None else config.get("seeds", prof.seeds))

    flags = merge_recipe(_overrides_layer(overrides), recipe)
    train, model_options, dataset_options = _recipe_tables(prof, config, flags, model_names, dataset_names)
    bench = BenchPlan(
        name=name or config.get("name") or derive_name(model_names, dataset_names, profile_name),
        models=model_names, datasets=dataset_names, seeds=seed_tuple, profile=profile_name, train=train,
        model_options=model_options, dataset_options=dataset_options, axes=parse_axes(config.get("axes", {})),
        **_run_settings(prof, config, dataset_names, cell_timeout=cell_timeout, deploy_speed=deploy_speed,
                        plan=plan, budget=budget),
        explicit=tuple(sorted({*config.get("train", {}), *flags["train"]})),
    )
    return _with_cells(bench, reg)


def _run_settings(prof: Profile, config: Mapping[str, Any], dataset_names: Sequence[str], *,
                  cell_timeout: float | None, deploy_speed: bool | None, plan: str | None,
                  budget: str | None) -> dict[str, Any]:
    """The plan's :class:`BenchPlan` fields beyond the recipe: timeout, inference and ONNX timing, planning mode,
    budgets and step floor (arguments beat the config file, which beats the profile)."""
    timeout = cell_timeout if cell_timeout is not None else config.get("cell_timeout")
    return dict(
        cell_timeout=float(timeout) if timeout else None,
        infer_repeats=int(config.get("infer_repeats", prof.infer_repeats)),
        deploy_speed=bool(deploy_speed if deploy_speed is not None else config.get("deploy_speed", False)),
        plan_mode=(mode := plan_mode(prof, config, plan)),
        budgets=grid_budgets(prof, config, mode, budget, dataset_names),
        min_steps=parse_min_steps(config.get("min_steps", prof.min_steps)),
    )


def _with_cells(bench: BenchPlan, reg: Registries) -> BenchPlan:
    """``bench`` with its datasets' plans (when it has budgets) and its expanded, validated cells."""
    if bench.budgets:  # planned, or a budget matched per model for the unplanned recipe
        bench = dataclasses.replace(bench, dataset_plans=_plan_datasets(bench, reg))
    # validate every option now, not in the middle of the grid, and expand the grid only this once
    return dataclasses.replace(bench, cells=tuple(expand_grid(bench, registries=reg)))


def _names(models: str | Sequence[str] | None, datasets: str | Sequence[str] | None, config: Mapping[str, Any],
           reg: Registries) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The selected model and dataset names (wildcards resolved; flags beat the config file)."""
    model_arg = models if models else config.get("models")
    if not model_arg:
        raise OptionError("no models given; pass --models A,B (see 'zoo models') or set models in the config")
    model_names = tuple(reg.models.select(split_list(model_arg, "models")))
    dataset_names = tuple(reg.datasets.select(split_list(datasets or config.get("datasets") or DEFAULT_DATASETS,
                                                          "datasets")))
    return model_names, dataset_names


def _plan_datasets(bench: BenchPlan, reg: Registries) -> dict[str, DatasetPlan]:
    """Each dataset's plan for the grid's models (the first is the reference), on the grid's device."""
    from zoo.bench.planned import plan_datasets

    models = {d: [(m, _model_options(bench, m, reg, d)) for m in bench.models] for d in bench.datasets}
    options = {d: {**bench.dataset_options.get("*", {}), **bench.dataset_options.get(d, {})} for d in bench.datasets}
    return plan_datasets(bench.datasets, models, dataset_options=options, budgets=bench.budgets,
                         device=str(bench.train.get("device", "auto")), min_steps=bench.min_steps,
                         registries=reg)


def _recipe_tables(prof: Profile, config: Mapping[str, Any], flags: Mapping[str, Mapping[str, Any]],
                   model_names: Sequence[str], dataset_names: Sequence[str]
                   ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The plan's training settings and its model and dataset options (``*``: all; a name: that one only)."""
    flat = {t: {k: v for k, v in config.get(t, {}).items() if not isinstance(v, dict)} for t in ("model", "dataset")}
    merged = merge_recipe({"train": prof.train, "model": prof.model}, {"train": config.get("train", {}), **flat},
                          flags)
    train = merged["train"]
    model_options: dict[str, dict[str, Any]] = {"*": merged["model"]}
    explicit_model = {*flat["model"], *flags["model"]}
    for dataset in dataset_names:  # "@<dataset>": the profile's model options for every model on that dataset
        on_dataset = {k: v for k, v in prof.dataset_model.get(dataset, {}).items() if k not in explicit_model}
        if on_dataset:
            model_options[f"@{dataset}"] = on_dataset
    explicit_dataset = {*flat["dataset"], *flags["dataset"]}  # beat the profile's per-dataset options too
    dataset_options = {**{n: {k: v for k, v in o.items() if k not in explicit_dataset} for n, o in prof.dataset.items()},
                       "*": merged["dataset"]}
    for table, names, target in (("model", model_names, model_options), ("dataset", dataset_names,
                                                                        dataset_options)):
        for key, value in config.get(table, {}).items():
            if isinstance(value, dict):
                if key not in names:
                    raise OptionError(f"config [{table}.{key}]: {key!r} is not one of the selected {table}s "
                                      f"({', '.join(names)})")
                target.setdefault(key, {}).update(value)
    if flags["train"].get("image_size") is not None:  # generated datasets (shapes) render at the training size
        for opts in dataset_options.values():
            if "image_size" in opts:
                opts["image_size"] = flags["train"]["image_size"]
    return train, model_options, dataset_options


def _overrides_layer(overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    values = {k: v for k, v in (overrides or {}).items() if k != "width"}
    return recipe_flags_layer(values, width=(overrides or {}).get("width"))


def _train_fields() -> tuple[str, ...]:
    from zoo.training import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _route_axis(axis: str, train_fields: Sequence[str]) -> tuple[str, str]:
    """``model.depth`` -> ("model", "depth"); ``loss`` -> ("train", "loss"); ``width`` -> ("model", "width")."""
    scope, dot, rest = axis.partition(".")
    if dot and scope in ("model", "dataset", "train"):
        return scope, rest.replace("-", "_")
    key = axis.replace("-", "_")
    return ("train", key) if key in train_fields else ("model", key)


def _model_options(plan: BenchPlan, model: str, reg: Registries, dataset: str) -> dict[str, Any]:
    """A model's options on a dataset before the axes: the plan's for all models (profile-wide ones only where
    the builder takes them), the profile's for that dataset (``@<dataset>``, likewise) and the model's own."""
    takes = option_defaults(reg.models.get(model).builder, exclude=MODEL_RESERVED)
    profile_model = PROFILES[plan.profile].model
    options = {k: v for k, v in plan.model_options.get("*", {}).items()
               if k in takes or not (k in profile_model and profile_model[k] == v)}
    options.update({k: v for k, v in plan.model_options.get(f"@{dataset}", {}).items() if k in takes})
    options.update(plan.model_options.get(model, {}))
    return options


def _resolve_runtime(train: dict[str, Any], known: dict[tuple[str, str], dict[str, str]]) -> dict[str, str]:
    """What the cell's device and precision resolve to here (asked once per pair); ``deterministic="auto"``
    becomes ``True`` on the CPU and ``False`` on a GPU, in ``train`` itself (``zoo.seeding.resolve_deterministic``)."""
    from zoo.precision import runtime_identity
    from zoo.seeding import resolve_deterministic

    key = (str(train.get("device", "auto")), str(train.get("precision", "auto")))
    if key not in known:
        known[key] = runtime_identity(*key)
    if "deterministic" in train:
        train["deterministic"] = resolve_deterministic(train["deterministic"], known[key]["device"])
    return known[key]


def expand_grid(plan: BenchPlan, *, registries: Registries | None = None) -> list[Cell]:
    """All cells of ``plan`` in a fixed order (dataset, model, axis values, seed), with validated recipes.

    Profile-wide model options (like ``width``) apply only to models whose builder takes them; options given
    explicitly (config, flags, axes) must be valid for every selected model. A planned grid's cells get their
    dataset's plan under the explicit settings (:func:`zoo.bench.planned.planned_recipe`). Each cell records
    what its device and precision resolve to on this host (:attr:`Cell.runtime`), and ``deterministic="auto"``
    (the CPU profiles') is resolved here: deterministic on the CPU, not on a GPU.
    """
    from zoo.bench.planned import budgeted_recipe, planned_recipe
    from zoo.registry import default_registry

    reg = registries if registries is not None else default_registry()
    train_fields = _train_fields()
    reserved = {"model", "dataset", "seed", "model_options", "dataset_options"}
    for key in plan.train:
        if key not in train_fields or key in reserved:
            valid = ", ".join(f for f in train_fields if f not in reserved)
            raise OptionError(f"unknown training setting {key!r}; valid settings: {valid}")
    axis_names = [a for a, _ in plan.axes]
    routes = [_route_axis(a, train_fields) for a in axis_names]
    explicit = {*plan.explicit, *(key for scope, key in routes if scope == "train")}
    runtimes: dict[tuple[str, str], dict[str, str]] = {}
    cells: list[Cell] = []
    for dataset in plan.datasets:
        dp = plan.dataset_plans.get(dataset)
        d_opts = {**plan.dataset_options.get("*", {}), **plan.dataset_options.get(dataset, {})}
        for model in plan.models:
            builder = reg.models.get(model).builder
            m_opts = _model_options(plan, model, reg, dataset)
            for values in itertools.product(*(v for _, v in plan.axes)) if plan.axes else [()]:
                roi = dp.set_options if dp is not None and plan.planned else {}
                train, mo, do = dict(plan.train), dict(m_opts), {**roi, **d_opts}
                for (scope, key), value in zip(routes, values):
                    {"train": train, "model": mo, "dataset": do}[scope][key] = value
                mo = validate_options(builder, mo, what=f"model {model!r}", exclude=MODEL_RESERVED)
                do = validate_options(reg.datasets.get(dataset).builder, do, what=f"dataset {dataset!r}")
                for key in train:
                    if key not in train_fields or key in reserved:
                        raise OptionError(f"axis {key!r} is not a training setting or a model option")
                runtime = _resolve_runtime(train, runtimes)
                record = None
                if dp is not None:
                    recipe = planned_recipe if plan.planned else budgeted_recipe
                    train, record = recipe(train, sorted(explicit), dp, model=model, model_options=mo)
                for seed in plan.seeds:
                    config = {**train, "model": model, "dataset": dataset, "model_options": mo,
                              "dataset_options": do, "seed": seed}
                    cells.append(Cell(model=model, dataset=dataset, seed=seed, config=config,
                                      axes=tuple(zip(axis_names, values)), infer_repeats=plan.infer_repeats,
                                      deploy_speed=plan.deploy_speed,
                                      plan=record, runtime=runtime))
    return cells
