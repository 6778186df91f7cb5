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


ModelBuilder = Callable[..., "nn.Module"]
