"""What every kind of check shares: results, the runner, and how a name, spec or builder becomes a case.

A check is a plain function that raises ``AssertionError`` (or any error) on a violation and ``CheckSkipped``
when it does not apply. ``run_checks`` runs a sequence of them on one case, each on one torch thread, and turns
errors into ``CheckResult``s naming the plugin object and the check.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from zoo.registry import Registries


Status = Literal["passed", "failed", "skipped"]
Kind = Literal["model", "dataset", "metric"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one plugin object.

    Attributes:
        name: the check's name, e.g. ``output-shape`` (see ``check_name``).
        status: ``passed``, ``failed`` or ``skipped``.
        error: the ``CheckFailed`` of a failure, the ``CheckSkipped`` of a skip, else None.
    """

    name: str
    status: Status
    error: BaseException | None = None


class CheckFailed(AssertionError):
    """A contract check failed; the message names the plugin object and the check."""


class CheckSkipped(Exception):
    """Raised by a check that does not apply here (e.g. a device move without CUDA)."""


def check_name(check: Callable[..., Any]) -> str:
    """The name results and test ids use for a check function.

    Args:
        check: a check function, e.g. ``check_output_shape``.

    Returns:
        Its name without the ``check_`` prefix, in kebab-case: ``output-shape``.
    """
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
    """Run one check on one case and record its outcome."""
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


def run_checks(checks: Iterable[Callable[[Any], None]], case: Any, label: str,
               raise_on_failure: bool) -> list[CheckResult]:
    """Run ``checks`` on ``case`` in order; every check runs even after a failure.

    Args:
        checks: the check functions.
        case: what they take (a ``ModelCase``, ``DatasetCase`` or ``MetricCase``).
        label: how messages name the plugin object, e.g. ``model 'unet'``.
        raise_on_failure: raise after the run if any check failed.

    Returns:
        One ``CheckResult`` per check, in order.

    Raises:
        CheckFailed: some check failed and ``raise_on_failure`` is set; the message lists every failure.
    """
    results = [_run_one(check, case, label) for check in checks]
    failed = [r for r in results if r.status == "failed"]
    if failed and raise_on_failure:
        message = "; ".join(str(r.error) for r in failed)
        raise CheckFailed(f"{len(failed)} of {len(results)} checks failed: {message}") from failed[0].error
    return results


def run_single_check(run: Callable[..., list[CheckResult]], check: Callable[[Any], None], plugin: Any,
                     **kwargs: Any) -> None:
    """Run one check through a ``check_*_plugin`` function; under pytest a skipped check calls ``pytest.skip``.

    Args:
        run: ``check_model_plugin``, ``check_dataset_plugin`` or ``check_metric_plugin``.
        check: the check function.
        plugin: what ``run`` takes first: a registered name, a spec or a builder.
        kwargs: further keyword arguments for ``run``.

    Raises:
        CheckFailed: the check failed.
    """
    result, = run(plugin, checks=(check,), raise_on_failure=True, **kwargs)
    if result.status == "skipped":
        import pytest

        pytest.skip(str(result.error))


def resolve_builder(plugin: Any, *, kind: Kind, spec_type: type,
                    registries: Registries | None) -> tuple[Any, Callable[..., Any], str]:
    """Turn a registered name, a spec or a bare builder into what a case needs.

    Args:
        plugin: a registered name, a spec of ``spec_type``, or a builder.
        kind: the plugin kind; names the registry to search and starts the label.
        spec_type: ``ModelSpec``, ``DatasetSpec`` or ``MetricSpec``.
        registries: where to look a name up; default: the installed plugins.

    Returns:
        ``(spec or None, builder, label)``; the label names the spec (``model 'unet'``) or, for a bare builder,
        its qualified name (``model builder my_net``).

    Raises:
        UnknownNameError: an unknown name.
    """
    if isinstance(plugin, str):
        from zoo.registry import resolve

        spec = getattr(resolve(registries), f"{kind}s").get(plugin)
    else:
        spec = plugin if isinstance(plugin, spec_type) else None
    if spec is not None:
        return spec, spec.builder, f"{kind} {spec.name!r}"
    return None, plugin, f"{kind} builder {getattr(plugin, '__qualname__', repr(plugin))}"


def small_options(builder: Callable[..., Any], small: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``small`` whose names ``builder`` takes.

    Args:
        builder: a model or dataset builder.
        small: option name -> value, e.g. ``SMALL_MODEL_OPTIONS``.

    Returns:
        The options ``builder`` accepts, as a new dict.
    """
    accepted = inspect.signature(builder).parameters
    return {k: v for k, v in small.items() if k in accepted}
