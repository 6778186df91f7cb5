"""The one pytest helper: ``parametrize_with_checks`` makes one test per (plugin, check) for every kind.

It takes plugin modules (their ``zoo_register_*`` hooks are called directly, so a plugin is checked before it is
installed), spec instances, registered names and bare builders, and runs each check through the kind's
``check_*_plugin`` function, so a test sees exactly what a direct call would report.

It never passes green on nothing: a plugin module that would fail to register (a misspelled hook, a builder
taking ``**kwargs``, an invalid name) or registers no spec at all adds a failing ``plugin:<module>:loads`` test
quoting the load error, and a call with nothing to check adds a failing ``nothing-to-check`` test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec
from zoo.testing.common import CheckFailed, CheckResult, Kind, check_name, run_single_check
from zoo.testing.datasets import DATASET_CHECKS, check_dataset_plugin
from zoo.testing.metrics import METRIC_CHECKS, check_metric_plugin
from zoo.testing.models import MODEL_CHECKS, check_model_plugin

if TYPE_CHECKING:
    import pytest

    from zoo.registry import Registries


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

    Args:
        plugin: a module or object with any of the ``zoo_register_*`` hook functions.

    Returns:
        The models', then the datasets', then the metrics' specs, each in the hook's order.
    """
    specs: list[Any] = []
    for hook in _HOOKS:
        function = getattr(plugin, hook, None)
        if function is not None:
            specs.extend(function() or ())
    return specs


class _Check:
    """One check bound to one kind, callable on the test's ``plugin`` parameter (a name, spec or builder)."""

    def __init__(self, kind: Kind, check: Callable[[Any], None], kwargs: Mapping[str, Any]) -> None:
        self.kind, self.check, self.kwargs = kind, check, kwargs
        self.__name__ = check.__name__

    def __call__(self, plugin: Any) -> None:
        run_single_check(_KINDS[self.kind][0], self.check, plugin, **self.kwargs)

    def __repr__(self) -> str:
        return f"{self.kind}:{check_name(self.check)}"


def _label(plugin: Any) -> str:
    """How a test id names a name, spec or builder."""
    if isinstance(plugin, str):
        return plugin
    return getattr(plugin, "name", None) or getattr(plugin, "__name__", repr(plugin))


class _LoadFailure:
    """The test a plugin module gets when it would not register as installed: fails with the load error."""

    __name__ = "loads"

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, plugin: Any) -> None:
        raise CheckFailed(self.message)

    def __repr__(self) -> str:
        return "plugin:loads"


def _load_problem(plugin: object, specs: Sequence[object]) -> str | None:
    """Why ``plugin`` (a module or object with hooks) would fail to register when installed, or None.

    It is registered in a private registry exactly as an installed plugin is, so a misspelled hook gets the same
    did-you-mean, and a module that registers nothing is named.
    """
    from zoo.registry import load_registry

    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    info = load_registry(plugins=[plugin], autoload=False, strict=False).plugins[0]
    if info.status == "failed":
        return f"{info.failure_message()}; zoo.testing checked nothing (it would not be registered either)"
    if not specs:
        hooks = ", ".join(info.hooks) or "no zoo_register_* hook"
        return (f"plugin {name!r} registers no model, dataset or metric ({hooks}); zoo.testing has nothing to check: "
                f"implement {', '.join(_HOOKS)} with @zoo.hookimpl and return specs")
    return None


def _items(plugins: Iterable[object], named: Mapping[Kind, Iterable[Any]]) -> list[tuple[Kind, Any]]:
    """(kind, name or spec or builder) for every plugin module's spec, every spec, and every named entry."""
    items: list[tuple[Kind, Any]] = []
    for plugin in plugins:
        for spec in (plugin,) if isinstance(plugin, (ModelSpec, DatasetSpec, MetricSpec)) else specs_of(plugin):
            items.append((next(k for k, (_, _, spec_type) in _KINDS.items() if isinstance(spec, spec_type)), spec))
    for kind, entries in named.items():
        items.extend((kind, entry) for entry in entries)
    return items


def parametrize_with_checks(
    *plugins: object, models: Iterable[str | Callable[..., Any]] = (),
    datasets: Iterable[str | Callable[..., Any]] = (), metrics: Iterable[str | Callable[..., Any]] = (),
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
        models: registered model names (looked up in ``registries``) or bare builders.
        datasets: registered dataset names or bare builders, likewise.
        metrics: registered metric names or bare builders, likewise.
        registries: for the names; default: the installed plugins.
        overrides: name (a builder's ``__name__``) -> keyword arguments for that plugin's ``check_*_plugin``
            call, e.g. ``{"accuracy": {"both_empty": 1.0}}`` or ``{"my-model": {"options": {"depth": 2}}}``.
            For the same arguments everywhere, build it with a comprehension over the names.

    Returns:
        The mark, with argument names ``plugin`` and ``check``. Test ids are ``<kind>:<name>:<check>``, e.g.
        ``model:tiny-fcn:backward``; a failed check raises ``CheckFailed`` and a skipped one calls ``pytest.skip``.
    """
    import pytest

    params = []
    for plugin in plugins:
        if not isinstance(plugin, (ModelSpec, DatasetSpec, MetricSpec)):
            problem = _load_problem(plugin, specs_of(plugin))
            if problem is not None:
                params.append(pytest.param(plugin, _LoadFailure(problem), id=f"plugin:{_label(plugin)}:loads"))
    for kind, plugin in _items(plugins, {"model": models, "dataset": datasets, "metric": metrics}):
        name = _label(plugin)
        kwargs = dict((overrides or {}).get(name, {}))
        if isinstance(plugin, str) and registries is not None:
            kwargs.setdefault("registries", registries)
        for check in _KINDS[kind][1]:
            params.append(pytest.param(plugin, _Check(kind, check, kwargs), id=f"{kind}:{name}:{check_name(check)}"))
    if not params:  # pytest would report an empty parametrization as one skip, and exit 0
        params.append(pytest.param(None, _LoadFailure("parametrize_with_checks() was given nothing to check: pass "
                                                      "plugin modules, specs, or models=/datasets=/metrics="),
                                   id="nothing-to-check"))
    return pytest.mark.parametrize(("plugin", "check"), params)
