"""The recipe of a training run (:class:`TrainConfig`) and what a run produced (:class:`RunResult`).

Both are plain dataclasses that turn into JSON: ``config.json`` holds the recipe, ``result.json`` the result.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.data.patches import SAMPLINGS, check_augment
from zoo.engine import OPTIMIZERS, SCHEDULES
from zoo.errors import OptionError, check_choice
from zoo.inference import BLENDS
from zoo.precision import DEVICES, PRECISIONS

__all__ = ["TrainConfig", "RunResult", "RESUMABLE_CHANGES", "parse_size"]

#: fields that may differ between an interrupted run and its resumption
RESUMABLE_CHANGES = ("epochs", "max_steps", "num_workers")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (recorded with its results; ``asdict`` gives JSON).

    Defaults follow the blog post's recipe: Adam, lr 1e-3, batch 16, 128x128 images, the task's default loss
    (BCE with logits for binary masks, cross-entropy otherwise), 25 epochs.

    Attributes:
        model, dataset: registered names; ``model_options`` / ``dataset_options`` go to their builders.
        epochs: budget in epochs, unless ``max_steps`` (optimizer steps) is set, which then replaces it.
        batch_size, image_size: training batches of ``image_size`` squares (augmentation crops and resizes),
            unless ``patch_size`` is set.
            ``batch_size`` is the *global* batch: under ``torchrun`` with W processes each takes
            ``batch_size / W`` images of the same batches one process would see (see ``zoo.distributed``).
        eval_image_size: how val/test are scored. ``None``: images and masks resized to ``image_size`` (the
            training scale; fast). An int: resized to that size. ``"native"``: at the original size (batch 1,
            padded to a multiple of 32), and with ``tiled=True`` by sliding ``image_size`` windows.
            ``"upsampled"``: each image resized to ``image_size`` squares as in training, its logits resized back
            and scored at the original size (the resize recipe scored on the same pixels as a native one).
        optimizer: ``adam``, ``adamw`` or ``sgd``; ``schedule``: per-step ``constant``, ``cosine`` or ``poly``.
        loss: a ``zoo.losses`` name, or ``None`` for the task default.
        augment: a preset ``none``, ``light`` or ``strong``, or ``+``-joined steps from ``hflip``, ``vflip``,
            ``rot90`` (e.g. ``hflip+vflip+rot90``; see ``zoo.data``).
        patch_size: ``(H, W)`` (an int, ``"HxW"`` or a list is accepted): training draws native-scale patches of
            this size (``zoo.data.patches``) instead of resizing to ``image_size``; a preset's random resized
            crop is then left out.
        sampling: with ``patch_size``: ``whole`` (each image padded, or centre-cropped when larger, to the patch)
            or ``crop`` (random native-scale crops). Padded mask pixels get the dataset's ``ignore_index`` (or
            ``zoo.data.PAD_LABEL``, which the training loss then ignores); padded image pixels are reflected.
        foreground_share: with ``crop``: the share of crops centred on a pixel of ``foreground_classes``
            (``()``: every class but 0).
        scale_jitter: ``(low, high)``: each patch is drawn at a random scale in this range (bilinear image,
            nearest mask); ``None``: native scale.
        input_scale: images (bilinear) and masks (nearest) are rescaled by this factor for training and
            prediction; predictions are upsampled back and scored at the original resolution.
        eval_window, eval_overlap, eval_blend: sliding-window scoring (``tiled`` with ``eval_image_size="native"``):
            the window ``(H, W)`` (default ``patch_size``, else ``image_size``), the overlap in ``[0, 1)`` and the
            blending (``zoo.inference.BLENDS``).
        plan: for a planned recipe (``zoo train --plan auto``): the plan it came from (``zoo.plan.Plan.to_dict()``)
            with the resolved ``budget`` and the ``overrides``, the planned settings that explicit ones replaced.
        val_every: validate every N epochs (and always after the last).
        select_metric: the val column that picks the best checkpoint, as pooled over the split (all pixels of all
            val images), with the direction of the metric that produces it.
        grad_clip: clip the global gradient norm to this value.
        metrics: metric names scored on test (``()``: every registered metric). Validation computes only the
            metric that produces ``select_metric`` when it can tell which one, else all of them.
        device, precision, channels_last, compile: see ``zoo.precision``. ``precision="auto"`` (default) is
            bf16 autocast + channels_last on a CPU with native bf16 or on CUDA, fp32 elsewhere; ``"fp32"``
            turns the fast path off. ``channels_last=None`` follows the precision. ``compile`` wraps the model
            in ``torch.compile``.
        deterministic: ``torch.use_deterministic_algorithms(True)``.
        seed: seeds Python, NumPy, torch and the per-epoch loader order.
        tiled: sliding-window inference for val/test (with ``eval_image_size="native"``).
        sync_bn: under ``torchrun``, batch-norm statistics over the global batch (``SyncBatchNorm``, CUDA only);
            without it each process normalises with its own ``batch_size / W`` images. No effect on one process.
    """

    model: str
    dataset: str
    model_options: Mapping[str, Any] = field(default_factory=dict)
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 25
    max_steps: int | None = None
    batch_size: int = 16
    image_size: int = 128
    eval_image_size: int | str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    loss: str | None = None
    augment: str = "light"
    val_every: int = 1
    select_metric: str = "dice"
    grad_clip: float | None = None
    metrics: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    deterministic: bool = False
    seed: int = 0
    num_workers: int = 0
    tiled: bool = False
    sync_bn: bool = False
    patch_size: int | tuple[int, int] | None = None
    sampling: str = "crop"
    foreground_share: float = 0.0
    foreground_classes: tuple[int, ...] = ()
    scale_jitter: tuple[float, float] | None = None
    input_scale: float = 1.0
    eval_window: int | tuple[int, int] | None = None
    eval_overlap: float = 0.5
    eval_blend: str = "gaussian"
    plan: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self._check_types()
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device.split(":")[0], DEVICES)
        for name in ("epochs", "batch_size", "image_size", "val_every"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise OptionError(f"max_steps={self.max_steps!r} must be >= 1 or None")
        if not (self.eval_image_size is None or self.eval_image_size in ("native", "upsampled")
                or (_is_int(self.eval_image_size) and self.eval_image_size > 0)):
            raise OptionError(f"eval_image_size={self.eval_image_size!r} must be None, 'native', 'upsampled' or "
                              f"a size > 0")
        self._check_patches()
        object.__setattr__(self, "model_options", dict(self.model_options))
        object.__setattr__(self, "dataset_options", dict(self.dataset_options))
        object.__setattr__(self, "metrics", tuple(self.metrics))

    def _check_types(self) -> None:
        """Every setting has its type and range, so a bad one fails here in one line naming it, not as a raw error
        deep inside the optimizer (``Invalid learning rate: -1.0``) or the loader."""
        for name in ("model", "dataset", "optimizer", "schedule", "augment", "select_metric", "device", "precision",
                     "sampling", "eval_blend"):
            if not isinstance(getattr(self, name), str):
                raise OptionError(f"{name}={getattr(self, name)!r} must be a string")
        if self.loss is not None and not isinstance(self.loss, str):
            raise OptionError(f"loss={self.loss!r} must be a string or None")
        for name in ("epochs", "batch_size", "image_size", "val_every", "num_workers", "seed"):
            if not _is_int(getattr(self, name)):
                raise OptionError(f"{name}={getattr(self, name)!r} must be a whole number")
        if self.max_steps is not None and not _is_int(self.max_steps):
            raise OptionError(f"max_steps={self.max_steps!r} must be a whole number or None")
        if self.num_workers < 0:
            raise OptionError(f"num_workers={self.num_workers!r} must be >= 0")
        if not 0 <= self.seed < 2**63:
            raise OptionError(f"seed={self.seed!r} must be in [0, 2**63)")
        _check_float("lr", self.lr, low=0.0, inclusive=False)
        _check_float("weight_decay", self.weight_decay, low=0.0)
        if self.grad_clip is not None:
            _check_float("grad_clip", self.grad_clip, low=0.0, inclusive=False)
        for name in ("compile", "deterministic", "tiled", "sync_bn"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(f"{name}={getattr(self, name)!r} must be true or false")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise OptionError(f"channels_last={self.channels_last!r} must be true, false or unset")
        for name in ("model_options", "dataset_options"):
            if not isinstance(getattr(self, name), Mapping):
                raise OptionError(f"{name}={getattr(self, name)!r} must be a table of options")
        if isinstance(self.metrics, str) or not all(isinstance(m, str) for m in self.metrics):
            raise OptionError(f"metrics={self.metrics!r} must be a list of metric names")
        for name in ("foreground_share", "input_scale", "eval_overlap"):
            _check_float(name, getattr(self, name))

    def _check_patches(self) -> None:
        """Check and normalise the native-scale patch and sliding-window settings."""
        check_augment(self.augment)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("eval_blend", self.eval_blend, BLENDS)
        for name in ("patch_size", "eval_window"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else parse_size(name, value))
        if not (isinstance(self.foreground_share, (int, float)) and 0 <= self.foreground_share <= 1):
            raise OptionError(f"foreground_share={self.foreground_share!r} must be in [0, 1]")
        classes = self.foreground_classes
        if isinstance(classes, str):
            classes = [c for c in classes.replace("+", ",").split(",") if c.strip()]
        try:
            object.__setattr__(self, "foreground_classes", tuple(int(c) for c in classes))
        except (TypeError, ValueError):
            raise OptionError(f"foreground_classes={self.foreground_classes!r} must be class indices, "
                              f"e.g. [1, 2]") from None
        if self.scale_jitter is not None:
            object.__setattr__(self, "scale_jitter", _jitter(self.scale_jitter))
        if not (isinstance(self.input_scale, (int, float)) and 0 < self.input_scale <= 4):
            raise OptionError(f"input_scale={self.input_scale!r} must be a factor in (0, 4]")
        if not (isinstance(self.eval_overlap, (int, float)) and 0 <= self.eval_overlap < 1):
            raise OptionError(f"eval_overlap={self.eval_overlap!r} must be in [0, 1)")

    @property
    def eval_tile(self) -> tuple[int, int]:
        """The sliding window: ``eval_window``, else ``patch_size``, else ``image_size`` squares."""
        return self.eval_window or self.patch_size or (self.image_size, self.image_size)  # type: ignore[return-value]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping (TOML ``[train]`` table, ``config.json``); unknown keys raise ``OptionError``."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise OptionError(f"unknown training setting(s) {', '.join(map(repr, unknown))}; "
                              f"valid: {', '.join(names)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def _is_int(value: Any) -> bool:
    """An int that is not a bool (``epochs = true`` in TOML is a mistake, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_float(name: str, value: Any, *, low: float | None = None, inclusive: bool = True) -> None:
    """``value`` is a finite real number (>= ``low``, or > ``low`` unless ``inclusive``), else ``OptionError``."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name}={value!r} must be a finite number")
    if low is not None and (value < low or (value == low and not inclusive)):
        raise OptionError(f"{name}={value!r} must be {'>=' if inclusive else '>'} {low:g}")


def parse_size(name: str, value: Any) -> tuple[int, int]:
    """``256``, ``"256"``, ``"512x384"`` or ``[512, 384]`` as ``(H, W)``; anything else raises ``OptionError``."""
    try:
        if isinstance(value, str):
            h, _, w = value.strip().lower().partition("x")
            size = (int(h), int(w or h))
        elif isinstance(value, int) and not isinstance(value, bool):
            size = (value, value)
        else:
            h, w = value
            size = (int(h), int(w))
    except (TypeError, ValueError):
        raise OptionError(f"{name}={value!r} is not a size: give N, 'HxW' or [H, W]") from None
    if min(size) < 1:
        raise OptionError(f"{name}={value!r} must have sides >= 1")
    return size


def _jitter(value: Any) -> tuple[float, float]:
    """``(low, high)`` with ``0 < low <= high``; ``"0.9-1.1"`` or ``"0.9,1.1"`` is accepted."""
    try:
        if isinstance(value, str):
            low, high = (float(v) for v in value.replace("-", ",").split(","))
        else:
            low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise OptionError(f"scale_jitter={value!r} is not a range: give [low, high], e.g. [0.9, 1.1]") from None
    if not 0 < low <= high < float("inf"):
        raise OptionError(f"scale_jitter={value!r} must satisfy 0 < low <= high, e.g. [0.9, 1.1]")
    return low, high


@dataclass
class RunResult:
    """What a run produced. ``status``: ``ok``, ``diverged``, ``oom``, ``failed`` or ``interrupted``."""

    config: TrainConfig
    status: str = "failed"
    error: str | None = None
    epochs_done: int = 0
    steps_done: int = 0
    train_seconds: float = 0.0
    best_epoch: int | None = None
    best_score: float | None = None
    test_pooled: dict[str, float] = field(default_factory=dict)
    test_mean: dict[str, float] = field(default_factory=dict)
    test_nan_count: dict[str, int] = field(default_factory=dict)
    per_image: list[tuple[str, str, float]] = field(default_factory=list)
    batch_size_used: int | None = None
    device: str = ""
    device_name: str = ""
    precision: dict[str, Any] = field(default_factory=dict)
    n_parameters: int = 0
    checkpoints: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    nonfinite_losses: int = 0
    skipped_steps: int = 0
    world_size: int = 1  # processes that trained it (torchrun); batch_size_used is the global batch
    batch_size_per_process: int | None = None

    def to_dict(self, *, per_image: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``per_image`` rows only when asked: they can be long)."""
        data = asdict(self)
        data["config"] = self.config.to_dict()
        if not per_image:
            data.pop("per_image")
        return json.loads(json.dumps(data, default=str))
