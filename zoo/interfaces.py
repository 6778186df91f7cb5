"""The contracts between zoo and its plugins: spec dataclasses and the dataset and metric protocols.

Plugins import from here (and from ``zoo.errors``, ``zoo.hookimpl``), never from zoo's internals.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "SPLITS",
    "Split",
    "ModelSpec",
    "DatasetSpec",
    "MetricSpec",
    "SegmentationDataset",
    "SplitDataset",
    "Metric",
    "first_docstring_line",
    "model_output_problem",
]

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


def first_docstring_line(obj: object) -> str:
    """The first line of ``obj``'s docstring, or '' (what ``zoo models`` shows as a description)."""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


@dataclass(frozen=True)
class _Spec:
    name: str
    builder: Callable[..., Any]
    description: str = ""
    # Keyword-only, so the subclasses' positional fields keep their places. A third-party spec that sets it
    # replaces a built-in of the same name (shown in ``zoo plugins``); without it, the first registrant keeps it.
    override: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if not self.description:
            object.__setattr__(self, "description", first_docstring_line(self.builder))


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """A model plugin's entry.

    ``builder(*, in_channels: int, num_classes: int, **options) -> nn.Module`` returns a module mapping
    ``(N, in_channels, H, W)`` float images to raw logits ``(N, num_classes, H, W)``. Every option is a
    keyword-only parameter with a default, so zoo can list and validate options.
    ``tags`` are free-form labels (``"attention"``, ``"residual"``) that ``zoo models`` can show.
    ``override=True`` (keyword-only, on every spec) replaces a built-in of the same name; without it a name
    that is already registered makes this plugin fail to register (see ``zoo.registry.build_registries``).
    """

    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec(_Spec):
    """A dataset plugin's entry.

    ``builder(**options) -> SegmentationDataset``. ``in_channels`` and ``num_classes`` are ``None`` when
    they depend on the data found at ``root`` (the built dataset always knows them). ``plan_hints`` tells the
    recipe planner what the masks cannot show, e.g. ``{"orientation_matters": True}`` for street scenes
    (see ``zoo.planner.PlanHints``).
    """

    in_channels: int | None = None
    num_classes: int | None = None
    plan_hints: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec(_Spec):
    """A metric plugin's entry.

    ``builder(*, num_classes: int, ignore_index: int | None, class_names: Sequence[str] | None, **options)
    -> Metric``. Binary tasks are ``num_classes=2`` (background, foreground).
    """

    higher_is_better: bool = True


@runtime_checkable
class SplitDataset(Protocol):
    """One split of a dataset: a map-style torch dataset of ``(image, mask)`` pairs.

    ``image`` is float32 ``(C, H, W)`` with values in ``[0, 1]``; ``mask`` is int64 ``(H, W)`` of class indices
    in ``[0, num_classes)``, or the dataset's ``ignore_index`` for void pixels. ``ids[i]`` names item ``i``.
    """

    ids: Sequence[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class SegmentationDataset(Protocol):
    """What a dataset builder returns: metadata plus fixed, reproducible train/val/test splits.

    The test split is never used for model selection.
    """

    in_channels: int
    num_classes: int
    class_names: Sequence[str]
    ignore_index: int | None

    def split(self, name: Split) -> SplitDataset: ...


@runtime_checkable
class Metric(Protocol):
    """A segmentation metric over class-index masks, computed per image and pooled over a split.

    ``update`` takes ``pred`` and ``target`` int64 ``(N, H, W)`` (target may hold ``ignore_index``), adds them to
    the pooled state, and returns per-image values: a mapping from column name (``"dice"``, ``"dice/vessel"``)
    to a float tensor ``(N,)``; NaN where the value is undefined (e.g. empty ground truth and prediction).
    ``compute`` returns the pooled values over everything seen since ``reset``, under the same column names.
    """

    def update(self, pred: Tensor, target: Tensor) -> Mapping[str, Tensor]: ...

    def compute(self) -> Mapping[str, float]: ...

    def reset(self) -> None: ...


def _describe(out: object) -> str:
    """What a forward returned, in words: ``a dict with keys ['out', 'aux']``, ``a Tensor of shape (2, 3, 8, 8)
    and dtype float32``."""
    import torch

    if isinstance(out, torch.Tensor):
        return f"a Tensor of shape {tuple(out.shape)} and dtype {str(out.dtype).removeprefix('torch.')}"
    name = type(out).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    if isinstance(out, Mapping):
        return f"{article} {name} with keys {list(out)[:5]}"
    if isinstance(out, (tuple, list)):
        return f"{article} {name} of {len(out)} items"
    return f"{article} {name}"


def model_output_problem(out: object, *, batch: int, size: tuple[int, int], channels: int | None = None) -> str | None:
    """How ``out``, a model's forward on ``batch`` images of ``size`` (H, W), breaks the model contract, or None.

    The contract: one floating-point Tensor of raw logits ``(N, num_classes, H, W)``, the input's N, H and W.
    The message says what the model returned and what is expected, e.g. for torchvision's segmentation models
    (which return ``{"out": logits, "aux": ...}``): return ``out["out"]`` from a wrapper's ``forward``.

    Args:
        out: what ``forward`` returned.
        batch, size: the input's N and (H, W).
        channels: the expected ``num_classes`` (the model's output channels), or None not to check it.
    """
    import torch

    shape = f"(N, num_classes, H, W) = ({batch}, {channels if channels is not None else 'num_classes'}, {size[0]}, " \
            f"{size[1]})"
    expected = f"the model contract expects one floating-point Tensor of raw logits {shape}"
    if isinstance(out, Mapping):
        hint = (" (torchvision's segmentation models do): wrap the model and return out['out'] from forward"
                if "out" in out else ": wrap the model and return the logits alone from forward")
        return f"forward returned {_describe(out)}; {expected}{hint}"
    if isinstance(out, (tuple, list)):
        return (f"forward returned {_describe(out)}; {expected}: return only the main logits from forward "
                f"(auxiliary or deep-supervision outputs are not part of the contract)")
    if not isinstance(out, torch.Tensor):
        return f"forward returned {_describe(out)}; {expected}"
    if out.ndim != 4 or out.shape[0] != batch or tuple(out.shape[-2:]) != tuple(size) or (
            channels is not None and out.shape[1] != channels):
        return f"forward returned {_describe(out)}; {expected}"
    if not out.is_floating_point():
        return (f"forward returned {_describe(out)}; {expected}: raw logits, not class indices (no argmax in "
                f"forward)")
    return None


ModelBuilder = Callable[..., "nn.Module"]
