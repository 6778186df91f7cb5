"""The dataset contract: metadata, disjoint non-empty splits, item dtypes, shapes and ranges, determinism.

``check_dataset_plugin`` runs ``DATASET_CHECKS`` on a registered name, a ``DatasetSpec`` or a bare builder.
Generated datasets are built at ``SMALL_DATASET_OPTIONS``, keeping only the options the builder takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.interfaces import SPLITS, DatasetSpec
from zoo.options import validate_options
from zoo.testing.common import CheckResult, resolve_builder, run_checks, small_options

if TYPE_CHECKING:
    from zoo.interfaces import SegmentationDataset
    from zoo.registry import Registries


SMALL_DATASET_OPTIONS: Mapping[str, Any] = {"image_size": 32, "train_items": 4, "val_items": 2, "test_items": 2}
"""Options that make generated datasets tiny; each is used only if the builder takes it."""

MAX_ITEMS = 4  # items looked at per split: enough to catch a wrong dtype or range, fast on file datasets


@dataclass
class DatasetCase:
    """What a dataset check needs: how to build the dataset under test, and the spec's declared metadata.

    Attributes:
        label: how messages name the dataset, e.g. ``dataset 'shapes'``.
        builder: ``builder(**options) -> SegmentationDataset``.
        options: builder options (already validated).
        in_channels: what the ``DatasetSpec`` declares, or None (known only once built).
        num_classes: likewise.
        max_items: items checked per split.
    """

    label: str
    builder: Callable[..., SegmentationDataset]
    options: Mapping[str, Any] = field(default_factory=dict)
    in_channels: int | None = None
    num_classes: int | None = None
    max_items: int = MAX_ITEMS
    _built: SegmentationDataset | None = field(default=None, repr=False)

    def build(self, *, fresh: bool = False) -> SegmentationDataset:
        """The dataset, built once and shared by the checks (``fresh=True`` builds a new one)."""
        if fresh:
            return self.builder(**self.options)
        if self._built is None:
            self._built = self.builder(**self.options)
        return self._built

    def splits(self) -> dict[str, Any]:
        """Split name -> split, for every split the dataset provides."""
        dataset = self.build()
        return {name: dataset.split(name) for name in SPLITS}


def check_metadata(case: DatasetCase) -> None:
    """``in_channels``, ``num_classes``, ``class_names``, ``ignore_index`` are set, and agree with the spec."""
    dataset = case.build()
    for attr in ("in_channels", "num_classes", "class_names", "ignore_index", "split"):
        assert hasattr(dataset, attr), f"the built dataset ({type(dataset).__name__}) has no {attr!r}"
    for attr in ("in_channels", "num_classes"):
        value = getattr(dataset, attr)
        assert isinstance(value, int) and value >= 1, f"{attr}={value!r}, expected a positive int"
        declared = getattr(case, attr)
        assert declared is None or declared == value, (
            f"the DatasetSpec declares {attr}={declared} but the built dataset has {attr}={value}")
    assert dataset.num_classes >= 2, f"num_classes={dataset.num_classes}; a binary task is 2 (background, fg)"
    names = list(dataset.class_names)
    assert len(names) == dataset.num_classes, (
        f"{len(names)} class_names {names} for num_classes={dataset.num_classes}")
    ignore = dataset.ignore_index
    assert ignore is None or (isinstance(ignore, int) and not 0 <= ignore < dataset.num_classes), (
        f"ignore_index={ignore!r} must be None or an int outside the classes [0, {dataset.num_classes})")


def check_splits(case: DatasetCase) -> None:
    """Splits train, val and test exist, are non-empty, have one unique id per item and share no id."""
    seen: dict[str, str] = {}
    for name, split in case.splits().items():
        assert len(split) > 0, f"split {name!r} is empty"
        ids = list(split.ids)
        assert len(ids) == len(split), f"split {name!r} has {len(split)} items but {len(ids)} ids"
        assert len(set(ids)) == len(ids), f"split {name!r} repeats ids"
        overlap = sorted(i for i in ids if i in seen)
        assert not overlap, (
            f"splits {seen[overlap[0]]!r} and {name!r} share {len(overlap)} ids, e.g. {overlap[:3]}: "
            f"test items would leak into training or selection")
        seen.update((i, name) for i in ids)


def check_items(case: DatasetCase) -> None:
    """Items are ``(image, mask)``: float32 ``(C, H, W)`` in [0, 1] and int64 ``(H, W)`` of valid labels."""
    import torch

    dataset = case.build()
    k, ignore = dataset.num_classes, dataset.ignore_index
    for name, split in case.splits().items():
        for i in range(min(len(split), case.max_items)):
            where = f"split {name!r} item {i} ({split.ids[i]!r})"
            item = split[i]
            assert isinstance(item, tuple) and len(item) == 2, f"{where} is {type(item).__name__}, not (image, mask)"
            image, mask = item
            assert isinstance(image, torch.Tensor) and isinstance(mask, torch.Tensor), f"{where}: not two tensors"
            assert image.dtype == torch.float32, f"{where}: image dtype {image.dtype}, expected torch.float32"
            assert image.ndim == 3 and image.shape[0] == dataset.in_channels, (
                f"{where}: image shape {tuple(image.shape)}, expected ({dataset.in_channels}, H, W)")
            assert torch.isfinite(image).all(), f"{where}: image has NaN or Inf values"
            low, high = float(image.min()), float(image.max())
            assert 0.0 <= low and high <= 1.0, f"{where}: image values in [{low:.3g}, {high:.3g}], expected [0, 1]"
            assert mask.dtype == torch.int64, f"{where}: mask dtype {mask.dtype}, expected torch.int64"
            assert tuple(mask.shape) == tuple(image.shape[1:]), (
                f"{where}: mask shape {tuple(mask.shape)}, expected (H, W) = {tuple(image.shape[1:])}")
            values = torch.unique(mask)
            bad = values[((values < 0) | (values >= k)) & (values != (-1 if ignore is None else ignore))]
            assert bad.numel() == 0, (
                f"{where}: mask values {bad.tolist()[:5]} are neither classes in [0, {k}) nor "
                f"ignore_index={ignore}")


def check_determinism(case: DatasetCase) -> None:
    """Reading an item twice, or from a second build with the same options, gives the same ids and tensors."""
    import torch

    again = case.build(fresh=True)
    for name, split in case.splits().items():
        other = again.split(name)
        assert list(other.ids) == list(split.ids), f"split {name!r} has other ids when built again"
        for i in range(min(len(split), case.max_items)):
            first, second, third = split[i], split[i], other[i]
            for what, a, b in (("read twice", first, second), ("built again", first, third)):
                assert all(torch.equal(x, y) for x, y in zip(a, b)), (
                    f"split {name!r} item {i} differs when {what}; a dataset must be reproducible (seed any "
                    f"randomness from the options; augmentation belongs to the engine)")


DATASET_CHECKS: tuple[Callable[[DatasetCase], None], ...] = (
    check_metadata,
    check_splits,
    check_items,
    check_determinism,
)


def _dataset_case(dataset: str | DatasetSpec | Callable[..., Any], *, registries: Registries | None,
                  options: Mapping[str, Any] | None, max_items: int) -> DatasetCase:
    """The case for a name, spec or builder, at ``SMALL_DATASET_OPTIONS`` unless ``options`` is given."""
    spec, builder, label = resolve_builder(dataset, kind="dataset", spec_type=DatasetSpec, registries=registries)
    if options is None:
        options = small_options(builder, SMALL_DATASET_OPTIONS)
    clean = validate_options(builder, options, what=label)
    return DatasetCase(label, builder, clean, spec.in_channels if spec else None,
                       spec.num_classes if spec else None, max_items)


def check_dataset_plugin(
    name_or_builder: str | DatasetSpec | Callable[..., Any], *, registries: Registries | None = None,
    options: Mapping[str, Any] | None = None, max_items: int = MAX_ITEMS,
    checks: Sequence[Callable[[DatasetCase], None]] = DATASET_CHECKS, raise_on_failure: bool = True,
) -> list[CheckResult]:
    """Run the dataset contract checks on a registered dataset, a ``DatasetSpec`` or a builder.

    The dataset is built once (plus once more for the determinism check) and at most ``max_items`` items per
    split are read. A dataset that cannot be built (missing files) fails every check with the builder's error.

    Args:
        name_or_builder: a registered dataset name, a ``DatasetSpec`` (its declared ``in_channels`` and
            ``num_classes`` are checked too), or a builder ``(**options) -> SegmentationDataset``.
        registries: where to look the name up; default: the installed plugins.
        options: builder options; None means ``SMALL_DATASET_OPTIONS`` restricted to what the builder takes.
        max_items: items checked per split.
        checks: the checks to run, in order (default: ``DATASET_CHECKS``).
        raise_on_failure: whether to raise ``CheckFailed`` once every check has run and any failed.

    Returns:
        A ``CheckResult`` for each check, in the order of ``checks``.

    Raises:
        CheckFailed: ``raise_on_failure`` is set and a check failed (named, with the dataset, in the message).
        UnknownNameError: ``name_or_builder`` is a name no installed plugin registers.
        OptionError: an option the builder does not take.
    """
    case = _dataset_case(name_or_builder, registries=registries, options=options, max_items=max_items)
    return run_checks(checks, case, case.label, raise_on_failure)

