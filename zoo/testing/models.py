"""The model contract: what every registered model must do, checked at a small size on 32x48 inputs.

``check_model_plugin`` runs ``MODEL_CHECKS`` on a registered name, a ``ModelSpec`` or a bare builder. Models are
built at ``SMALL_MODEL_OPTIONS`` (``width=4, depth=3``), keeping only the options the builder takes; pass
``options={}`` for the builder's defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.interfaces import ModelSpec, model_output_problem
from zoo.options import validate_options
from zoo.testing.common import (
    CheckResult,
    CheckSkipped,
    resolve_builder,
    run_checks,
    run_single_check,
    small_options,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.registry import Registries


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
    problem = model_output_problem(out, batch=n, size=size, channels=num_classes)
    assert problem is None, problem
    got = out.dtype  # type: ignore[union-attr]
    assert got == dtype, f"forward returned {got} logits for {dtype} input; expected {dtype} (logits follow the input)"


def _require_output_contract(case: ModelCase) -> None:
    """Skip a check whose model returns no Tensor at all (a dict, a tuple): ``output-shape`` reports that once,
    in contract words, instead of every check failing with its own raw error (``'dict' object has no attribute
    'shape'``)."""
    import torch

    model = case.build().eval()
    with torch.no_grad():
        out = model(case.images())
    if isinstance(out, torch.Tensor):
        return  # a wrong shape or dtype: the checks still run (and the shape checks say what is wrong)
    problem = model_output_problem(out, batch=BATCH, size=SIZE, channels=case.num_classes)
    if problem is not None:
        raise CheckSkipped(f"not run: the model breaks the output contract (check 'output-shape' fails: {problem})")


def check_output_shape(case: ModelCase) -> None:
    """Float logits ``(N, num_classes, H, W)`` for 1 and 3 input channels and 1 and 3 classes.

    The case's own configuration comes first, so a model that breaks the output contract (a dict, a tuple) is
    reported as that, not as whatever the other configurations raise.
    """
    import torch

    configs = [(case.in_channels, case.num_classes)]
    configs += [(c, k) for c in (1, 3) for k in (1, 3) if (c, k) != configs[0]]
    for in_channels, num_classes in configs:
        model = case.build(in_channels=in_channels, num_classes=num_classes).eval()
        try:
            with torch.no_grad():
                out = model(case.images(in_channels=in_channels))
        except Exception as exc:  # a builder that ignores in_channels or num_classes fails here, not in zoo
            first = (str(exc).strip().splitlines() or [""])[0]
            raise AssertionError(
                f"in_channels={in_channels}, num_classes={num_classes}: forward raised {type(exc).__name__}: "
                f"{first}; the model contract: the builder builds for any in_channels (1 for grayscale) and "
                f"num_classes it is given") from None
        try:
            _check_logits(out, BATCH, num_classes, SIZE, torch.float32)
        except AssertionError as exc:
            raise AssertionError(f"in_channels={in_channels}, num_classes={num_classes}: {exc}") from None


def check_odd_input_size(case: ModelCase) -> None:
    """An odd-sized input (37x45) gives logits of that size."""
    _require_output_contract(case)
    import torch

    model = case.build().eval()
    with torch.no_grad():
        out = model(case.images(ODD_SIZE))
    _check_logits(out, BATCH, case.num_classes, ODD_SIZE, torch.float32)


def check_backward(case: ModelCase) -> None:
    """In training mode, a backward pass gives every trainable parameter a finite gradient."""
    _require_output_contract(case)
    import torch

    model = case.build().train()
    out = model(case.images())
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {len(missing)} parameters: {', '.join(missing[:5])}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {', '.join(bad[:5])}"


def check_train_batch_of_one(case: ModelCase) -> None:
    """A training step on a batch of one image works: ``zoo train --batch-size 1`` (and an out-of-memory back-off
    down to one image) train in batches of one, and the engine does not avoid them.

    A BatchNorm after global pooling sees one value per channel there and raises; use GroupNorm or no norm.
    """
    _require_output_contract(case)
    import torch

    model = case.build().train()
    x = case.images()[:1]
    try:
        out = model(x)
        _check_logits(out, 1, case.num_classes, SIZE, torch.float32)
        out.sum().backward()
    except AssertionError as exc:
        raise AssertionError(f"in training mode on a batch of one image: {exc}") from None
    except (ValueError, RuntimeError) as exc:
        hint = ("; a BatchNorm after global pooling (or on a 1x1 feature map) sees one value per channel: use "
                "GroupNorm or LayerNorm there" if "more than 1 value per channel" in str(exc) else "")
        raise AssertionError(f"a training step on a batch of one image (zoo train --batch-size 1) raised "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0]}{hint}") from None


def check_deterministic_algorithms(case: ModelCase) -> None:
    """A train step on the CPU runs under ``torch.use_deterministic_algorithms(True)``, as ``zoo bench``'s CPU
    profiles train (``deterministic="auto"``). It says nothing about CUDA: see :func:`check_cuda_determinism`."""
    _require_output_contract(case)
    from zoo.seeding import first_nondeterministic_op

    model = case.build().train()
    op = first_nondeterministic_op(lambda: model(case.images()).sum().backward())
    assert op is None, f"{op} has no deterministic CPU kernel, so deterministic CPU training refuses this model"


def check_cuda_determinism(case: ModelCase) -> None:
    """On CUDA, whether a train step has deterministic kernels; skipped, naming the op, where one has none.

    Not a contract failure: GPU recipes are non-deterministic by default. The skip reason says what
    ``--deterministic`` on CUDA would refuse (``zoo.seeding.check_deterministic_step``). Skipped without CUDA.
    """
    import torch

    from zoo.seeding import first_nondeterministic_op

    if not torch.cuda.is_available():
        raise CheckSkipped("CUDA is not available")
    _require_output_contract(case)
    model = case.build().cuda().train()
    x = case.images().cuda()
    op = first_nondeterministic_op(lambda: model(x).sum().backward())
    if op is not None:
        raise CheckSkipped(f"{op} has no deterministic CUDA kernel: --deterministic on CUDA refuses this model "
                           f"(GPU recipes train it non-deterministically)")


def check_eval_determinism(case: ModelCase) -> None:
    """Two forward passes in eval mode on the same input give identical outputs."""
    _require_output_contract(case)
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
    _require_output_contract(case)
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
    _require_output_contract(case)
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
    _require_output_contract(case)
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
    _require_output_contract(case)
    model = case.build().to("cuda").eval()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type != "cuda"]
    assert not left, f'.to("cuda") left {", ".join(left[:5])} on another device'
    with torch.no_grad():
        out = model(case.images().cuda())
    assert out.device.type == "cuda", f"output on {out.device}"


def check_export(case: ModelCase) -> None:
    """``torch.export.export`` captures the eval-mode model, and the exported program gives the same logits."""
    _require_output_contract(case)
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
    check_train_batch_of_one,
    check_deterministic_algorithms,
    check_cuda_determinism,
    check_eval_determinism,
    check_no_layers_in_forward,
    check_state_dict_round_trip,
    check_to_float64,
    check_to_cuda,
    check_export,
)


def _model_case(model: str | ModelSpec | Callable[..., nn.Module], *, registries: Registries | None,
                in_channels: int, num_classes: int, options: Mapping[str, Any] | None) -> ModelCase:
    """The case for a name, spec or builder, at ``SMALL_MODEL_OPTIONS`` unless ``options`` is given."""
    from zoo.registry import MODEL_RESERVED

    _, builder, label = resolve_builder(model, kind="model", spec_type=ModelSpec, registries=registries)
    if options is None:
        options = small_options(builder, SMALL_MODEL_OPTIONS)
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
    return run_checks(checks, case, case.label, raise_on_failure)


def run_model_check(check: Callable[[ModelCase], None], name_or_builder: str | ModelSpec | Callable[..., nn.Module],
                    **kwargs: Any) -> None:
    """Run one model check as ``check_model_plugin`` would; under pytest a skipped check calls ``pytest.skip``.

    Args:
        check: one of ``MODEL_CHECKS`` (or a check of your own taking a ``ModelCase``).
        name_or_builder: a registered model name, a ``ModelSpec`` or a builder.
        kwargs: further arguments for ``check_model_plugin`` (``registries``, ``in_channels``, ``options``, ...).

    Raises:
        CheckFailed: the check failed.
    """
    run_single_check(check_model_plugin, check, name_or_builder, **kwargs)
