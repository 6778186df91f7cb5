"""The Python API that the ``zoo`` command line wraps. Everything here is usable on its own.

Every command is one call here: :func:`train`, :func:`evaluate`, :func:`predict`, :func:`bench`,
:func:`leaderboard`, the registry listings and builders, dataset checks. The default registry is built on first
use (never at ``import zoo``) from the installed plugins; pass ``plugins=[...]`` and ``autoload=False`` to
:func:`load_registry` for a private one (tests, notebooks). Functions that train or score import torch when
called, so ``import zoo.api`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import __version__
from zoo.bench.grid import DEFAULT_DATASETS, PROFILES, parse_shard, select_shard
from zoo.bench.runner import EXECUTORS
from zoo.costs import count_gmacs, count_parameters
from zoo.errors import OptionError, UnknownNameError, ZooError
from zoo.interfaces import SPLITS
from zoo.options import format_options, load_toml, option_defaults, parse_option_args
from zoo.plan import format_plan
from zoo.plugins import PluginInfo
from zoo.recipe import RECIPE_FLAGS, plan_layer, recipe_flags_layer, train_config
from zoo.registry import (METRIC_RESERVED, MODEL_RESERVED, Registries, build_dataset, build_metric, build_model,
                          default_registry, load_registry, reset_default_registry, resolve)

if TYPE_CHECKING:
    from zoo.bench.grid import BenchPlan
    from zoo.bench.runner import BenchSummary, CellExecutor, ProgressCallback
    from zoo.data import CheckReport
    from zoo.engine import EvalResult
    from zoo.export import ExportResult
    from zoo.fingerprint import Fingerprint
    from zoo.interfaces import SegmentationDataset
    from zoo.planning import DatasetPlan
    from zoo.training import PredictionResult, RunResult, TrainConfig

__all__ = [
    "__version__", "ZooError", "OptionError", "UnknownNameError", "SPLITS", "RECIPE_FLAGS", "format_options",
    "load_toml", "parse_option_args", "recipe_flags_layer", "train_config", "plan_layer", "train", "evaluate",
    "write_evaluation", "predict", "export_checkpoint", "check_dataset", "preview_dataset", "fingerprint", "plan",
    "PROFILES", "EXECUTORS", "DEFAULT_DATASETS", "format_plan", "parse_shard", "select_shard", "bench_plan",
    "bench", "bench_executor", "bench_cell", "bench_out", "leaderboard", "report", "new_plugin", "allocator_hint",
    "load_registry", "default_registry", "reset_default_registry", "list_models", "list_datasets", "list_metrics",
    "list_plugins", "build_model", "build_dataset", "build_metric", "ModelInfo", "model_info", "count_parameters",
    "count_gmacs", "MODEL_RESERVED", "METRIC_RESERVED"
]


def list_models(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered models, optionally filtered by a wildcard (``'unet*'``)."""
    return resolve(registries).models.names(pattern)


def list_datasets(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered datasets."""
    return resolve(registries).datasets.names(pattern)


def list_metrics(pattern: str | None = None, *, registries: Registries | None = None) -> list[str]:
    """Names of the registered metrics."""
    return resolve(registries).metrics.names(pattern)


def list_plugins(*, registries: Registries | None = None) -> tuple[PluginInfo, ...]:
    """Every plugin that was found: loaded, failed or blocked."""
    return resolve(registries).plugins


@dataclass(frozen=True)
class ModelInfo:
    """What ``zoo info MODEL`` shows."""

    name: str
    description: str
    provider: PluginInfo
    options: Mapping[str, Any]  # option -> default
    in_channels: int
    num_classes: int
    image_size: int
    parameters: int
    gmacs: float


def model_info(
    name: str, *, in_channels: int = 3, num_classes: int = 1, image_size: int = 256,
    registries: Registries | None = None, **options: Any,
) -> ModelInfo:
    """Description, options with defaults, parameter count and GMACs of a model at ``image_size``."""
    reg = resolve(registries)
    spec = reg.models.get(name)
    model = build_model(name, in_channels=in_channels, num_classes=num_classes, registries=reg, **options)
    return ModelInfo(
        name=name, description=spec.description, provider=reg.models.provider(name),
        options=option_defaults(spec.builder, exclude=MODEL_RESERVED), in_channels=in_channels,
        num_classes=num_classes, image_size=image_size, parameters=count_parameters(model),
        gmacs=count_gmacs(model, in_channels, image_size),
    )


# ------------------------------------------------------------------------------------------------------------
# Training, evaluation and prediction


def train(config: TrainConfig, out: str | Path, *, resume: bool = False, quiet: bool = False,
          unsafe_load: bool = False, registries: Registries | None = None) -> RunResult:
    """Train one run (``zoo train``): fit on train, select on val, score the best checkpoint on test.

    Args:
        config: the recipe (:func:`train_config` builds one from a file, flags and options).
        out: the run folder (checkpoints, ``log.jsonl``, ``result.json``, test scores).
        resume: continue the interrupted run in ``out``.
        quiet: no progress bars.
        unsafe_load: allow a training-state file that torch's weights-only loader refuses (trusted files only).

    Returns:
        The run's result; its ``status`` is ``ok``, ``diverged`` or ``failed``.
    """
    from zoo.training import run

    return run(config, out, resume=resume, quiet=quiet, unsafe_load=unsafe_load, registries=registries)


def evaluate(checkpoint: str | Path, dataset: str | None = None, *, split: str = "test",
             dataset_options: Mapping[str, Any] | None = None, metrics: Sequence[str] = (),
             eval_image_size: int | str | None = "checkpoint", tiled: bool = False, batch_size: int = 8,
             device: str = "auto", precision: str = "auto", registries: Registries | None = None) -> EvalResult:
    """Score a checkpoint on a split of a dataset (``zoo eval``); see ``zoo.training.evaluate_checkpoint``.

    ``checkpoint`` may also be a file written by :func:`export_checkpoint` (``.onnx`` runs on ONNX Runtime).
    """
    from zoo.training import evaluate_checkpoint

    return evaluate_checkpoint(checkpoint, dataset, split=split, dataset_options=dataset_options, metrics=metrics,
                               eval_image_size=eval_image_size, tiled=tiled, batch_size=batch_size, device=device,
                               precision=precision, registries=registries)


def write_evaluation(result: EvalResult, out: str | Path, *, prefix: str = "eval",
                     extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write an evaluation's ``PREFIX_per_image.csv`` and ``PREFIX_summary.json``; returns both paths."""
    from zoo.training import write_eval_outputs

    return write_eval_outputs(result, out, prefix=prefix, extra=extra)


def predict(checkpoint: str | Path, images: Sequence[str | Path], out: str | Path, *, mode: str = "resize",
            batch_size: int = 8, device: str = "auto", precision: str = "auto", compile: bool = False,
            registries: Registries | None = None) -> PredictionResult:
    """Write a class-index mask PNG and an overlay PNG per image file (``zoo predict``).

    Returns the masks written and, for each image that could not be read, its path and the reason (the other
    images are still predicted). ``checkpoint`` may also be a file written by :func:`export_checkpoint`
    (``.onnx`` runs on ONNX Runtime).
    """
    from zoo.training import predict_files

    return predict_files(checkpoint, images, out, mode=mode, batch_size=batch_size, device=device,
                         precision=precision, compile=compile, registries=registries)


def export_checkpoint(checkpoint: str | Path, *, format: str = "onnx", out: str | Path | None = None,
                      opset: int | None = None, dynamic_size: bool = False, check: bool = True,
                      registries: Registries | None = None) -> ExportResult:
    """Export a checkpoint to ONNX or a torch.export ``.pt2`` and check parity (``zoo export``).

    The file carries the pipeline the checkpoint was scored with; :func:`predict` and :func:`evaluate` take it in
    place of a checkpoint. See ``zoo.export.export_checkpoint`` for the arguments.

    Raises:
        ExportError: the model cannot be exported (one line naming the operator or construct), or the ``onnx``
            extra is missing.
    """
    from zoo.export import export_checkpoint as export

    return export(checkpoint, format=format, out=out, opset=opset, dynamic_size=dynamic_size, check=check,
                  registries=registries)


# ------------------------------------------------------------------------------------------------------------
# Datasets


def check_dataset(name: str, *, splits: Sequence[str] = SPLITS, limit: int | None = None,
                  registries: Registries | None = None, **options: Any) -> tuple[SegmentationDataset, CheckReport]:
    """Build dataset ``name`` and scan it (``zoo datasets check``): every bad file, class frequencies.

    Structural problems found while building (a missing folder, an unpaired file) are collected into the report
    rather than raised, so one of them does not hide the others.
    """
    from zoo import data

    with data.collect_problems() as problems:
        dataset = build_dataset(name, registries=registries, **options)
    return dataset, data.check_dataset(dataset, splits=splits, limit=limit, problems=problems)


def preview_dataset(name: str, out: str | Path, *, split: str = "train", count: int = 8,
                    registries: Registries | None = None, **options: Any) -> Path:
    """Save a PNG grid of ``count`` images of a split with their masks overlaid (``zoo datasets show``)."""
    from zoo import data

    return data.save_preview(build_dataset(name, registries=registries, **options), out, split=split, count=count)


def fingerprint(name: str, *, dataset_options: Mapping[str, Any] | None = None, refresh: bool = False,
                registries: Registries | None = None) -> Fingerprint:
    """Describe a dataset's train split (``zoo datasets fingerprint``): sizes, intensities, classes, structures.

    The dataset is built as :func:`plan` plans it (its region of interest on where the data has one); the
    result is cached per dataset identity (``zoo.fingerprint.fingerprint_dataset``).

    Args:
        name: a registered dataset.
        dataset_options: options for its builder.
        refresh: compute again even when cached.
    """
    from zoo.fingerprint import fingerprint_dataset
    from zoo.planning import dataset_with_roi

    dataset, _ = dataset_with_roi(name, dataset_options, registries=registries)
    return fingerprint_dataset(dataset, refresh=refresh)


def plan(name: str, *, model: str = "unet", model_options: Mapping[str, Any] | None = None,
         budget: str | None = None, device: str = "auto", dataset_options: Mapping[str, Any] | None = None,
         registries: Registries | None = None) -> DatasetPlan:
    """Derive a training recipe for ``model`` on dataset ``name`` from its data (``zoo plan``).

    Args:
        name: a registered dataset.
        model, model_options: the model it is planned for (its cost and stride).
        budget: ``"135 tflops"``, ``"450 steps"``, ``"20 epochs"`` or ``"10 min"`` (default: the planner's,
            ``zoo.planner.DEFAULT_BUDGET``).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``: the device limits planned for.
        dataset_options: options for the dataset's builder.

    Returns:
        A ``zoo.planning.DatasetPlan``: ``.plan`` (print it with :func:`format_plan`) and the
        ``.dataset_options`` to train with.
    """
    from zoo.planner import DEFAULT_BUDGET
    from zoo.planning import plan_dataset

    return plan_dataset(name, models=[(model, dict(model_options or {}))], budget=budget or DEFAULT_BUDGET,
                        dataset_options=dataset_options, device=device, registries=registries)


# ------------------------------------------------------------------------------------------------------------
# Benchmarks


def bench_plan(*, models: str | Sequence[str] | None, datasets: str | Sequence[str] | None = None,
               seeds: str | Sequence[int] | None = None, profile: str | None = None,
               config: str | Path | Mapping[str, Any] | None = None,
               recipe: Mapping[str, Mapping[str, Any]] | None = None, name: str | None = None,
               cell_timeout: float | None = None, plan: str | None = None, budget: str | None = None,
               deploy_speed: bool | None = None, registries: Registries | None = None) -> BenchPlan:
    """Parse a benchmark request into a plan with its cells (profile < config file < ``recipe`` flags).

    Args:
        models: names or wildcards (``"unet,unet-attn"``); the first is the baseline of the comparisons.
        datasets: default ``shapes``.
        seeds: default the profile's.
        profile: ``quick``, ``default`` or ``paper``.
        config: a benchmark TOML file (path) or its parsed content.
        recipe: command-line recipe values as a layer (:func:`recipe_flags_layer`).
        plan: ``auto`` plans each dataset's recipe from its data, ``none`` keeps the profile's resize recipe
            (default: the config's, else the profile's).
        budget: the training budget of planned cells (``"135 tflops"``; default: the config's, else the
            profile's).
        deploy_speed: also time each cell's model exported to ONNX, in ONNX Runtime (default: the config's
            ``deploy_speed``, else off).
    """
    from zoo.bench.grid import make_plan
    from zoo.bench.plan_config import load_plan_config

    if isinstance(config, (str, Path)):
        config = load_plan_config(config)
    return make_plan(models=models, datasets=datasets, seeds=seeds, profile=profile, config=config, recipe=recipe,
                     name=name, cell_timeout=cell_timeout, plan=plan, budget=budget, deploy_speed=deploy_speed,
                     registries=registries)


def bench(plan: BenchPlan, out: str | Path | None = None, *, shard: str | tuple[int, int] | None = None,
          rerun_failed: bool = False, force: bool = False, threads: int | None = None, devices: int = 1,
          keep_checkpoints: str = "best", on_cell: ProgressCallback | None = None,
          command: Sequence[str] | None = None, executor: str | CellExecutor = "local",
          ray_address: str | None = None) -> BenchSummary:
    """Run a benchmark plan (``zoo bench``): every cell in its own process, resumable, then tables and plots.

    Args:
        plan: from :func:`bench_plan`.
        out: the output folder (default ``results/<plan name>``).
        shard: ``"I/N"`` or ``(I, N)``: only every N-th cell from the I-th.
        threads: CPU threads per cell (``OMP_NUM_THREADS``).
        devices, keep_checkpoints, rerun_failed, force, on_cell, command: see
            ``zoo.bench.runner.run_benchmark``.
        executor: ``"local"`` (cells as subprocesses here) or ``"ray"`` (cells as Ray tasks across a cluster;
            needs ``pip install 'segzoo[ray]'``; see docs/scaling.md), or one from :func:`bench_executor`.
        ray_address: the Ray cluster to join (``"auto"``, ``"ray://HOST:10001"``); default a local instance.
    """
    import os

    from zoo.bench.grid import parse_shard
    from zoo.bench.runner import DEFAULT_RESULTS_DIR, make_executor, run_benchmark

    env = None
    if threads:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return run_benchmark(plan, Path(out) if out else DEFAULT_RESULTS_DIR / plan.name,
                         shard=parse_shard(shard) if isinstance(shard, str) else shard, rerun_failed=rerun_failed,
                         force=force, env=env, on_cell=on_cell, devices=devices, keep_checkpoints=keep_checkpoints,
                         command=command, executor=executor if not isinstance(executor, str) else
                         make_executor(executor, address=ray_address, threads=threads))


def bench_executor(*, threads: int | None = None) -> CellExecutor:
    """A local executor whose cell fork server starts now, so its imports overlap :func:`bench_plan`; :func:`bench`
    runs the cells with it and closes it."""
    from zoo.bench.runner import make_executor

    return make_executor("local", threads=threads, warm=True)


def bench_out(plan: BenchPlan, out: str | Path | None = None) -> Path:
    """Where :func:`bench` writes ``plan``'s results."""
    from zoo.bench.runner import DEFAULT_RESULTS_DIR

    return Path(out) if out else DEFAULT_RESULTS_DIR / plan.name


def bench_cell(directory: str | Path, *, resume: bool = False) -> int:
    """Run one prepared cell in this process (what ``zoo bench`` starts per cell); 0 when it ends ``ok``."""
    from zoo.bench.cell import execute_cell

    return execute_cell(directory, resume=resume)


def leaderboard(dirs: Sequence[str | Path], out: str | Path | None = None, *, baseline: str | None = None,
                metric: str | None = None, plots: bool = True, html: bool = True, readme: str | Path | None = None,
                published: str | Path | None = None, samples: str | Sequence[str] | None = None) -> dict[str, Path]:
    """Re-render (and merge) benchmark tables, plots and the page from records (``zoo leaderboard``).

    Args:
        readme: also rewrite this page's generated blocks of the output folder (its results summary and
            reproduction tables: :func:`zoo.bench.summary.update_readme`).
        published: the published figures' CSV the reproduction tables compare with.
        samples: the datasets whose test images the page shows in its qualitative grids: names, or one string
            (``"all"``, the default; ``"none"``; or a comma list).

    Raises:
        ZooError: a folder without the ``cells/`` that ``zoo bench`` writes, or a ``readme`` without a block of
            the folder.
    """
    from zoo.bench.page import sample_datasets
    from zoo.bench.report import write_leaderboard
    from zoo.bench.summary import update_readme

    paths = [Path(d) for d in dirs]
    missing = [str(d) for d in paths if not (d / "cells").is_dir()]
    if missing:
        raise ZooError(f"no benchmark records in {', '.join(missing)} (expected a cells/ folder written by "
                       f"'zoo bench')")
    dest = Path(out) if out else paths[0]
    written = write_leaderboard(paths, dest, baseline=baseline, metric=metric, plots=plots, html=html,
                                samples=sample_datasets(samples))
    if readme is not None:
        try:
            update_readme(readme, dest, published=published, metric=metric or "dice")
        except (ValueError, OSError) as exc:
            raise ZooError(f"--readme {readme}: {exc}") from None
        written["readme"] = Path(readme)
    return written


def report(folder: str | Path, out: str | Path | None = None, *, metric: str | None = None,
           samples: str | Sequence[str] | None = None) -> Path:
    """Write a benchmark folder's page, one self-contained HTML file (``zoo report``), and return its path.

    Args:
        folder: a folder with the tables ``zoo bench`` / ``zoo leaderboard`` wrote (its plots are embedded, its
            cell records give each cell's detail view).
        out: the file (default ``folder/report.html``).
        metric: the main metric (default: the one the comparisons were computed on).
        samples: the datasets whose test images the qualitative grids show (as :func:`leaderboard`).

    Raises:
        ZooError: the folder has no ``leaderboard.csv``.
    """
    from zoo.bench.page import sample_datasets, write_report

    return write_report(folder, out, metric=metric, samples=sample_datasets(samples))


# ------------------------------------------------------------------------------------------------------------
# Plugin authors and the machine


def new_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write a plugin package skeleton that passes the contract kit into ``directory/zoo-<name>/``."""
    from zoo.scaffold import new_plugin as scaffold

    return scaffold(name, directory)


def allocator_hint() -> bool:
    """Say once per user and machine when CPU training runs on glibc's malloc (a faster one helps 15-45%)."""
    from zoo.allocator import hint_once

    return hint_once()
