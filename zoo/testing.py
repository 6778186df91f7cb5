"""Contract checks for zoo plugins, for zoo's own tests and for any plugin package's test suite.

In the spirit of scikit-learn's ``check_estimator``/``parametrize_with_checks``: every check is a plain function
that raises ``AssertionError`` on a violation, and two entry points run them::

    from zoo.testing import check_model_plugin, parametrize_model_checks

    check_model_plugin("my-model")            # runs every model check; raises CheckFailed naming the failures
    results = check_model_plugin(my_builder, raise_on_failure=False)   # list[CheckResult]

    @parametrize_model_checks(["my-model"])   # one pytest test per (model, check), ids "my-model-backward"
    def test_my_model(model, check):
        check(model)

The same pattern covers datasets (``check_dataset_plugin``: metadata, disjoint splits, item dtypes/shapes/ranges,
determinism) and metrics (``check_metric_plugin``: hand-computed cases, NaN rules, reset, ignore_index), and
``parametrize_with_checks(my_package.plugin)`` makes one pytest test per (spec, check) for all three kinds.

Model checks build the model at a small size: by default ``SMALL_MODEL_OPTIONS`` (``width=4, depth=3``),
keeping only the options the builder takes; pass ``options={}`` for the builder's defaults. Inputs are 32-48 px.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from zoo.interfaces import SPLITS, DatasetSpec, MetricSpec, ModelSpec
from zoo.options import validate_options

if TYPE_CHECKING:
    import pytest
    import torch
    from torch import nn

    from zoo.interfaces import Metric, SegmentationDataset
    from zoo.registry import Registries

__all__ = [
    "CheckResult",
    "CheckFailed",
    "CheckSkipped",
    "ModelCase",
    "SMALL_MODEL_OPTIONS",
    "MODEL_CHECKS",
    "check_model_plugin",
    "run_model_check",
    "parametrize_model_checks",
    "DatasetCase",
    "SMALL_DATASET_OPTIONS",
    "DATASET_CHECKS",
    "check_dataset_plugin",
    "MetricCase",
    "METRIC_CHECKS",
    "check_metric_plugin",
    "specs_of",
    "parametrize_with_checks",
]

Status = Literal["passed", "failed", "skipped"]


# --- results ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one plugin object."""

    name: str
    status: Status
    error: BaseException | None = None


class CheckFailed(AssertionError):
    """A contract check failed; the message names the plugin object and the check."""


class CheckSkipped(Exception):
    """Raised by a check that does not apply here (e.g. a device move without CUDA)."""


def check_name(check: Callable[..., Any]) -> str:
    """``check_output_shape`` -> ``output-shape``."""
    return re.sub(r"^check_", "", check.__name__).replace("_", "-")


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for the block, then restore the caller's setting.

    The checks run tiny models, where a second thread buys nothing; on a busy machine (CI, shared cores) the
    threads' synchronisation made the checks 10-40x slower (0.3 s vs 12 s for the U-Net checks, measured).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run_one(check: Callable[[Any], None], case: Any, label: str) -> CheckResult:
    name = check_name(check)
    try:
        with _one_thread():
            check(case)
    except CheckSkipped as exc:
        return CheckResult(name, "skipped", exc)
    except Exception as exc:  # any error inside a check is a failure of the plugin under test
        failure = CheckFailed(f"{label} failed check {name!r}: {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        return CheckResult(name, "failed", failure)
    return CheckResult(name, "passed")


def _run_checks(checks: Iterable[Callable[[Any], None]], case: Any, label: str,
                raise_on_failure: bool) -> list[CheckResult]:
    results = [_run_one(check, case, label) for check in checks]
    failed = [r for r in results if r.status == "failed"]
    if failed and raise_on_failure:
        message = "; ".join(str(r.error) for r in failed)
        raise CheckFailed(f"{len(failed)} of {len(results)} checks failed: {message}") from failed[0].error
    return results


# --- model checks -----------------------------------------------------------------------------------------

SMALL_MODEL_OPTIONS: Mapping[str, Any] = {"width": 4, "depth": 3}
"""Options that make the zoo's models tiny; each is used only if the builder takes it."""

BATCH = 2
SIZE = (32, 48)  # not square, so a swapped H and W shows
ODD_SIZE = (37, 45)


@dataclass(frozen=True)
class ModelCase:
    """What a model check needs: how to build the model under test and the channels to use.

    Attributes:
        label: how messages name the model, e.g. ``model 'unet'``.
        builder: ``builder(*, in_channels, num_classes, **options) -> nn.Module``.
        options: builder options (already validated).
        in_channels: image channels for the checks that use one configuration.
        num_classes: classes for those checks.
    """

    label: str
    builder: Callable[..., nn.Module]
    options: Mapping[str, Any] = field(default_factory=dict)
    in_channels: int = 3
    num_classes: int = 2

    def build(self, *, in_channels: int | None = None, num_classes: int | None = None, seed: int = 0) -> nn.Module:
        """Build the model with a fixed seed, without disturbing the caller's random state."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.builder(in_channels=self.in_channels if in_channels is None else in_channels,
                                num_classes=self.num_classes if num_classes is None else num_classes,
                                **self.options)

    def images(self, size: tuple[int, int] = SIZE, *, in_channels: int | None = None, seed: int = 0,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """A seeded batch ``(BATCH, C, H, W)`` of images in ``[0, 1)``."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        channels = self.in_channels if in_channels is None else in_channels
        return torch.rand(BATCH, channels, *size, generator=generator, dtype=dtype or torch.float32)


def _check_logits(out: object, n: int, num_classes: int, size: tuple[int, int], dtype: torch.dtype) -> None:
    import torch

    assert isinstance(out, torch.Tensor), f"forward returned {type(out).__name__}, expected one Tensor"
    expected = (n, num_classes, *size)
    assert tuple(out.shape) == expected, f"output shape {tuple(out.shape)}, expected {expected}"
    assert out.dtype == dtype, f"output dtype {out.dtype}, expected {dtype} (float logits like the input)"


def check_output_shape(case: ModelCase) -> None:
    """Float logits ``(N, num_classes, H, W)`` for 1 and 3 input channels and 1 and 3 classes."""
    import torch

    for in_channels in (1, 3):
        for num_classes in (1, 3):
            model = case.build(in_channels=in_channels, num_classes=num_classes).eval()
            with torch.no_grad():
                out = model(case.images(in_channels=in_channels))
            try:
                _check_logits(out, BATCH, num_classes, SIZE, torch.float32)
            except AssertionError as exc:
                raise AssertionError(f"in_channels={in_channels}, num_classes={num_classes}: {exc}") from None


def check_odd_input_size(case: ModelCase) -> None:
    """An odd-sized input (37x45) gives logits of that size."""
    import torch

    model = case.build().eval()
    with torch.no_grad():
        out = model(case.images(ODD_SIZE))
    _check_logits(out, BATCH, case.num_classes, ODD_SIZE, torch.float32)


def check_backward(case: ModelCase) -> None:
    """In training mode, a backward pass gives every trainable parameter a finite gradient."""
    import torch

    model = case.build().train()
    out = model(case.images())
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {len(missing)} parameters: {', '.join(missing[:5])}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {', '.join(bad[:5])}"


def check_deterministic_algorithms(case: ModelCase) -> None:
    """A train step runs under ``torch.use_deterministic_algorithms(True)``, as ``zoo bench`` trains by default."""
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        model = case.build().train()
        model(case.images()).sum().backward()
    finally:
        torch.use_deterministic_algorithms(was)


def check_eval_determinism(case: ModelCase) -> None:
    """Two forward passes in eval mode on the same input give identical outputs."""
    import torch

    model = case.build().eval()
    x = case.images()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second), (
        f"two eval forwards differ (max abs diff {(first - second).abs().max().item():.3g}); "
        f"is a layer built or re-initialised in forward()?"
    )


@contextmanager
def _registrations() -> Iterator[list[str]]:
    """Record every module, parameter or buffer registered on any module while the block runs."""
    from torch.nn.modules import module as module_mod

    events: list[str] = []

    def record(kind: str) -> Callable[..., None]:
        def hook(owner: nn.Module, name: str, value: object) -> None:
            events.append(f"{kind} {name!r} on {type(owner).__name__}")
        return hook

    handles = [
        module_mod.register_module_module_registration_hook(record("module")),
        module_mod.register_module_parameter_registration_hook(record("parameter")),
        module_mod.register_module_buffer_registration_hook(record("buffer")),
    ]
    try:
        yield events
    finally:
        for handle in handles:
            handle.remove()


def _tensor_ids(model: nn.Module) -> dict[str, int]:
    named = [*model.named_parameters(), *model.named_buffers(), *model.named_modules()]
    return {name: id(obj) for name, obj in named}


def check_no_layers_in_forward(case: ModelCase) -> None:
    """``forward`` builds no layer: same parameters, buffers, submodules and state_dict keys before and after."""
    import torch

    model = case.build()
    before, keys = _tensor_ids(model), list(model.state_dict())
    with _registrations() as events:
        model.train()(case.images())
        with torch.no_grad():
            model.eval()(case.images())
    assert not events, f"forward() registered new layers: {'; '.join(events[:5])}"
    after = _tensor_ids(model)
    changed = sorted(set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]})
    assert not changed, f"forward() replaced or added: {', '.join(changed[:5])}"
    assert list(model.state_dict()) == keys, "state_dict keys changed during forward()"


def check_state_dict_round_trip(case: ModelCase) -> None:
    """A state_dict loaded (strictly) into a model built with another seed reproduces the outputs."""
    import torch

    source = case.build(seed=0).train()
    with torch.no_grad():
        source(case.images(seed=3))  # moves BN running statistics away from their initial values
    target = case.build(seed=1)
    target.load_state_dict(source.state_dict())
    source.eval()
    target.eval()
    x = case.images()
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), msg=lambda m: f"outputs differ after loading: {m}")


def check_to_float64(case: ModelCase) -> None:
    """``.to(torch.float64)`` converts every floating parameter and buffer, and the forward follows."""
    import torch

    model = case.build().to(torch.float64).eval()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
            if t.is_floating_point() and t.dtype != torch.float64]
    assert not left, f".to(torch.float64) left {', '.join(left[:5])} in another dtype"
    with torch.no_grad():
        out = model(case.images(dtype=torch.float64))
    _check_logits(out, BATCH, case.num_classes, SIZE, torch.float64)


def check_to_cuda(case: ModelCase) -> None:
    """``.to("cuda")`` moves every parameter and buffer, and the forward runs there (skipped without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        raise CheckSkipped("CUDA is not available")
    model = case.build().to("cuda").eval()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type != "cuda"]
    assert not left, f'.to("cuda") left {", ".join(left[:5])} on another device'
    with torch.no_grad():
        out = model(case.images().cuda())
    assert out.device.type == "cuda", f"output on {out.device}"


def check_export(case: ModelCase) -> None:
    """``torch.export.export`` captures the eval-mode model, and the exported program gives the same logits."""
    import torch

    model = case.build().eval()
    x = case.images()
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x),
                                   msg=lambda m: f"exported program disagrees with eager: {m}")


MODEL_CHECKS: tuple[Callable[[ModelCase], None], ...] = (
    check_output_shape,
    check_odd_input_size,
    check_backward,
    check_deterministic_algorithms,
    check_eval_determinism,
    check_no_layers_in_forward,
    check_state_dict_round_trip,
    check_to_float64,
    check_to_cuda,
    check_export,
)


def _model_case(model: str | ModelSpec | Callable[..., nn.Module], *, registries: Registries | None,
                in_channels: int, num_classes: int, options: Mapping[str, Any] | None) -> ModelCase:
    from zoo.registry import MODEL_RESERVED, default_registry

    if isinstance(model, str):
        builder = (registries or default_registry()).models.get(model).builder
        label = f"model {model!r}"
    elif isinstance(model, ModelSpec):
        builder, label = model.builder, f"model {model.name!r}"
    else:
        builder = model
        label = f"model builder {getattr(model, '__qualname__', repr(model))}"
    if options is None:
        accepted = inspect.signature(builder).parameters
        options = {k: v for k, v in SMALL_MODEL_OPTIONS.items() if k in accepted}
    clean = validate_options(builder, options, what=label, exclude=MODEL_RESERVED)
    return ModelCase(label, builder, clean, in_channels, num_classes)


def check_model_plugin(
    name_or_builder: str | ModelSpec | Callable[..., nn.Module], *, registries: Registries | None = None,
    in_channels: int = 3, num_classes: int = 2, options: Mapping[str, Any] | None = None,
    checks: Sequence[Callable[[ModelCase], None]] = MODEL_CHECKS, raise_on_failure: bool = True,
) -> list[CheckResult]:
    """Run the model contract checks on a registered model or a builder.

    Args:
        name_or_builder: a registered model name, a ``ModelSpec`` (checked without a registry), or a builder
            ``(*, in_channels, num_classes, **options)``.
        registries: where to look the name up; default: the installed plugins.
        in_channels: image channels for the checks that use one configuration.
        num_classes: classes for those checks.
        options: builder options; None means ``SMALL_MODEL_OPTIONS`` restricted to what the builder takes.
        checks: the checks to run (default: all of ``MODEL_CHECKS``).
        raise_on_failure: raise ``CheckFailed`` (an ``AssertionError``) after the run if any check failed.

    Returns:
        One ``CheckResult`` per check, in order.

    Raises:
        CheckFailed: some check failed and ``raise_on_failure`` is set; the message names model and checks.
        UnknownNameError, OptionError: an unknown model name or option.
    """
    case = _model_case(name_or_builder, registries=registries, in_channels=in_channels,
                       num_classes=num_classes, options=options)
    return _run_checks(checks, case, case.label, raise_on_failure)


def run_model_check(check: Callable[[ModelCase], None], name_or_builder: str | Callable[..., nn.Module],
                    **kwargs: Any) -> None:
    """Run one check (as ``check_model_plugin`` would); under pytest a skipped check calls ``pytest.skip``."""
    result, = check_model_plugin(name_or_builder, checks=(check,), raise_on_failure=True, **kwargs)
    if result.status == "skipped":
        import pytest

        pytest.skip(str(result.error))


def parametrize_model_checks(names_or_builders: Iterable[str | Callable[..., nn.Module]],
                             **kwargs: Any) -> pytest.MarkDecorator:
    """A ``pytest.mark.parametrize`` over (model, check) pairs, with ids ``"<model>-<check>"``.

    The test takes ``model`` and ``check`` and calls ``check(model)``. ``kwargs`` go to ``check_model_plugin``
    (``registries``, ``in_channels``, ``num_classes``, ``options``).
    """
    import pytest

    params = []
    for model in names_or_builders:
        label = model if isinstance(model, str) else getattr(model, "__name__", repr(model))
        for check in MODEL_CHECKS:
            run = functools.partial(run_model_check, check, **kwargs)
            params.append(pytest.param(model, run, id=f"{label}-{check_name(check)}"))
    return pytest.mark.parametrize(("model", "check"), params)


# --- dataset checks ---------------------------------------------------------------------------------------

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
    from zoo.registry import default_registry

    spec: DatasetSpec | None
    if isinstance(dataset, str):
        spec = (registries or default_registry()).datasets.get(dataset)
    else:
        spec = dataset if isinstance(dataset, DatasetSpec) else None
    builder = spec.builder if spec is not None else dataset
    label = (f"dataset {spec.name!r}" if spec is not None
             else f"dataset builder {getattr(builder, '__qualname__', repr(builder))}")
    if options is None:
        accepted = inspect.signature(builder).parameters
        options = {k: v for k, v in SMALL_DATASET_OPTIONS.items() if k in accepted}
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
        checks: the checks to run (default: all of ``DATASET_CHECKS``).
        raise_on_failure: raise ``CheckFailed`` after the run if any check failed.

    Returns:
        One ``CheckResult`` per check, in order.

    Raises:
        CheckFailed: some check failed and ``raise_on_failure`` is set; the message names dataset and checks.
        UnknownNameError, OptionError: an unknown dataset name or option.
    """
    case = _dataset_case(name_or_builder, registries=registries, options=options, max_items=max_items)
    return _run_checks(checks, case, case.label, raise_on_failure)


# --- metric checks ----------------------------------------------------------------------------------------

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
    from zoo.registry import METRIC_RESERVED, default_registry

    spec: MetricSpec | None
    if isinstance(metric, str):
        spec = (registries or default_registry()).metrics.get(metric)
    else:
        spec = metric if isinstance(metric, MetricSpec) else None
    builder = spec.builder if spec is not None else metric
    name = spec.name if spec is not None else getattr(builder, "__name__", "metric")
    label = (f"metric {spec.name!r}" if spec is not None
             else f"metric builder {getattr(builder, '__qualname__', repr(builder))}")
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
    return _run_checks(checks, case, case.label, raise_on_failure)


# --- one pytest helper for all three kinds ----------------------------------------------------------------

Kind = Literal["model", "dataset", "metric"]
_KINDS: dict[Kind, tuple[Callable[..., list[CheckResult]], Sequence[Callable[[Any], None]], type]] = {
    "model": (check_model_plugin, MODEL_CHECKS, ModelSpec),
    "dataset": (check_dataset_plugin, DATASET_CHECKS, DatasetSpec),
    "metric": (check_metric_plugin, METRIC_CHECKS, MetricSpec),
}
_HOOKS: dict[str, Kind] = {"zoo_register_models": "model", "zoo_register_datasets": "dataset",
                           "zoo_register_metrics": "metric"}


def specs_of(plugin: object) -> list[ModelSpec | DatasetSpec | MetricSpec]:
    """The specs a plugin module (or object) returns from its ``zoo_register_*`` hooks, without a registry.

    This is how a plugin's own tests check it before it is installed.
    """
    specs: list[Any] = []
    for hook in _HOOKS:
        function = getattr(plugin, hook, None)
        if function is not None:
            specs.extend(function() or ())
    return specs


class _Check:
    """One check bound to one kind, callable on the test's ``plugin`` parameter (a name or a spec)."""

    def __init__(self, kind: Kind, check: Callable[[Any], None], kwargs: Mapping[str, Any]) -> None:
        self.kind, self.check, self.kwargs = kind, check, kwargs
        self.__name__ = check.__name__

    def __call__(self, plugin: Any) -> None:
        run = _KINDS[self.kind][0]
        result, = run(plugin, checks=(self.check,), raise_on_failure=True, **self.kwargs)
        if result.status == "skipped":
            import pytest

            pytest.skip(str(result.error))

    def __repr__(self) -> str:
        return f"{self.kind}:{check_name(self.check)}"


def parametrize_with_checks(
    *plugins: object, models: Iterable[str] = (), datasets: Iterable[str] = (), metrics: Iterable[str] = (),
    registries: Registries | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> pytest.MarkDecorator:
    """A ``pytest.mark.parametrize`` over (plugin, check) for models, datasets and metrics alike.

    A plugin's whole test file (no install needed: the hooks are called directly)::

        from zoo.testing import parametrize_with_checks
        import my_package.plugin

        @parametrize_with_checks(my_package.plugin)
        def test_zoo_contract(plugin, check):
            check(plugin)

    Args:
        plugins: plugin modules (their ``zoo_register_*`` hooks are called) or spec instances.
        models, datasets, metrics: registered names, looked up in ``registries``.
        registries: for the names; default: the installed plugins.
        overrides: name -> keyword arguments for that plugin's ``check_*_plugin`` call, e.g.
            ``{"accuracy": {"both_empty": 1.0}}`` or ``{"my-model": {"options": {"depth": 2}}}``.

    Test ids are ``<kind>:<name>:<check>``, e.g. ``model:tiny-fcn:backward``.
    """
    import pytest

    items: list[tuple[Kind, str, Any]] = []
    for plugin in plugins:
        for spec in (plugin,) if isinstance(plugin, (ModelSpec, DatasetSpec, MetricSpec)) else specs_of(plugin):
            kind = next(k for k, (_, _, spec_type) in _KINDS.items() if isinstance(spec, spec_type))
            items.append((kind, spec.name, spec))
    for kind, names in (("model", models), ("dataset", datasets), ("metric", metrics)):
        items.extend((kind, name, name) for name in names)  # type: ignore[misc]

    params = []
    for kind, name, plugin in items:
        kwargs = dict((overrides or {}).get(name, {}))
        if isinstance(plugin, str) and registries is not None:
            kwargs.setdefault("registries", registries)
        for check in _KINDS[kind][1]:
            params.append(pytest.param(plugin, _Check(kind, check, kwargs), id=f"{kind}:{name}:{check_name(check)}"))
    return pytest.mark.parametrize(("plugin", "check"), params)
