"""Name -> spec registries for models, datasets and metrics, built from the plugins' registration hooks.

Lookup is by exact name; a miss raises an error with close matches and the available names, and mentions any
plugin that failed to load (it may have provided the name). When two plugins register one name, the first keeps
it and the later one is reported as failed, naming both (``DuplicateNameError`` in strict mode); a third-party
spec with ``override=True`` replaces a built-in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import inspect
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from zoo.errors import (DuplicateNameError, OptionError, PluginLoadError, UnknownNameError, ZooError,
                        unknown_name_message)
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec
from zoo.options import validate_options
from zoo.plugins import PluginInfo, env_flag, get_plugin_manager

if TYPE_CHECKING:
    from torch import nn

    from zoo.interfaces import Metric, SegmentationDataset

__all__ = ["Registry", "Registries", "build_registries", "NAME_PATTERN", "load_registry", "default_registry",
           "reset_default_registry", "resolve", "build_model", "build_dataset", "build_metric", "MODEL_RESERVED",
           "METRIC_RESERVED"]

log = logging.getLogger(__name__)
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
S = TypeVar("S", ModelSpec, DatasetSpec, MetricSpec)


@dataclass(frozen=True)
class _Entry(Generic[S]):
    spec: S
    provider: PluginInfo


class Registry(Generic[S]):
    """The specs of one kind (``"model"``, ``"dataset"`` or ``"metric"``), keyed by name."""

    def __init__(self, kind: str, failures: Sequence[PluginInfo] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, _Entry[S]] = {}
        self._failures = tuple(failures)

    def add(self, spec: S, provider: PluginInfo) -> None:
        """Add ``spec``; raise ``DuplicateNameError`` if its name is taken."""
        if spec.name in self._entries:
            other = self._entries[spec.name].provider
            raise DuplicateNameError(
                f"{self.kind} {spec.name!r} is registered twice: by plugin {other.label} and by plugin "
                f"{provider.label}; uninstall one of them or disable it with ZOO_DISABLE_PLUGINS"
            )
        self._entries[spec.name] = _Entry(spec, provider)

    def get(self, name: str) -> S:
        """The spec registered as ``name``."""
        return self._entry(name).spec

    def provider(self, name: str) -> PluginInfo:
        """The plugin (with distribution and version) that registered ``name``."""
        return self._entry(name).provider

    def _entry(self, name: str) -> _Entry[S]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self._miss(name)) from None

    def _miss(self, name: str) -> str:
        """The unknown-name message, with a note on every plugin that failed (it may have provided ``name``)."""
        message = unknown_name_message(self.kind, name, self._entries)
        for failure in self._failures:
            message += f"; note: {failure.failure_message()}"
        return message

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell-style wildcard (``'unet*'``)."""
        return sorted(n for n in self._entries if pattern is None or fnmatch.fnmatchcase(n, pattern))

    def select(self, names: str | Sequence[str]) -> list[str]:
        """Resolve ``'unet,unet-attn'`` or ``['unet*']``: exact names and wildcards, in order, without repeats.

        A name that matches nothing raises ``UnknownNameError``.
        """
        items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
        selected: list[str] = []
        for item in items:
            matches = self.names(item) if any(ch in item for ch in "*?[") else [self.get(item).name]
            if not matches:
                raise UnknownNameError(self._miss(item))
            selected += [m for m in matches if m not in selected]
        return selected

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[S]:
        return (self._entries[n].spec for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class Registries:
    """Everything the loaded plugins provide, plus a report on every plugin."""

    models: Registry[ModelSpec]
    datasets: Registry[DatasetSpec]
    metrics: Registry[MetricSpec]
    plugins: tuple[PluginInfo, ...]


_HOOKS = (
    ("model", "zoo_register_models", ModelSpec),
    ("dataset", "zoo_register_datasets", DatasetSpec),
    ("metric", "zoo_register_metrics", MetricSpec),
)


def _validate_spec(spec: object, spec_type: type, hook: str) -> None:
    if not isinstance(spec, spec_type):
        raise TypeError(f"{hook} returned {spec!r}; expected {spec_type.__name__} instances")
    name = spec.name  # type: ignore[attr-defined]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"name {name!r} is not valid: use lowercase letters and digits joined by '-' "
            f"(as users type it, e.g. 'unet-attn')"
        )
    builder = spec.builder  # type: ignore[attr-defined]
    if not callable(builder):
        raise TypeError(f"{name!r}: builder {builder!r} is not callable")
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise TypeError(
            f"{name!r}: builder {getattr(builder, '__qualname__', builder)} takes **kwargs; spell out every "
            f"option as a keyword parameter with a default so zoo can list and validate it"
        )


def _clash(spec: Any, kind: str, holder: PluginInfo, provider: PluginInfo) -> str | None:
    """Why ``provider`` may not take ``spec``'s name from ``holder`` (None when its ``override=True`` may)."""
    if spec.override and holder.builtin and not provider.builtin:
        return None
    why = (f"{kind} {spec.name!r} is already registered by plugin {holder.label}, which keeps it (the first "
           f"registrant wins)")
    if spec.override:
        return why + "; override=True replaces only a built-in name: rename it"
    fix = "rename it" + (", or set override=True in its spec to replace the built-in" if holder.builtin else "")
    return f"{why}; {fix}"


def build_registries(
    pm: pluggy.PluginManager, infos: Sequence[PluginInfo], *, strict: bool = False
) -> Registries:
    """Call each plugin's registration hooks and collect the specs.

    Each plugin's hook is called on its own, so a hook that raises or returns something invalid marks that
    plugin as failed (reported like an import failure) and registers none of its names; the rest go on.
    Plugins register in load order (explicit plugins, built-ins, then the rest sorted; see ``zoo.plugins``), and
    the first to register a name keeps it: a later plugin that registers a taken name is marked failed, naming
    the name, both plugins and the fix, and registers none of its names. A third-party spec with
    ``override=True`` replaces a built-in's entry instead (recorded in its ``PluginInfo.overrides``).

    Raises:
        DuplicateNameError: in strict mode, when two plugins register one name.
        PluginLoadError: in strict mode, when a hook fails.
    """
    by_name = {info.name: info for info in infos}
    collected, failed = _collect_specs(pm)
    order = [info.name for info in infos] + [n for n in collected if n not in by_name]
    holders, overrides, clashes = _assign_names(order, collected, failed, by_name)
    plugins = _plugin_reports(infos, failed, overrides, clashes, strict=strict)
    failures = [p for p in plugins if p.status in ("failed", "unavailable")]  # quoted when a name is missing
    registries = Registries(Registry("model", failures), Registry("dataset", failures),
                            Registry("metric", failures), tuple(plugins))
    final = {p.name: p for p in plugins}
    for kind, entries in holders.items():
        registry = getattr(registries, kind + "s")
        for spec, provider in entries.values():
            registry.add(spec, final.get(provider.name, provider))
    return registries


def _collect_specs(pm: pluggy.PluginManager) -> tuple[dict[str, list[tuple[Any, str]]], dict[str, str]]:
    """Each plugin's validated specs (plugin name -> [(spec, kind)]) and the plugins whose hook failed (-> why)."""
    collected: dict[str, list[tuple[Any, str]]] = {}
    failed: dict[str, str] = {}
    for kind, hook_name, spec_type in _HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            try:
                specs = list(impl.function() or ())
                for spec in specs:
                    _validate_spec(spec, spec_type, hook_name)
            except Exception as exc:  # a plugin's bug must not take the others down
                failed[impl.plugin_name] = f"{hook_name}() failed: {type(exc).__name__}: {exc}"
                continue
            collected.setdefault(impl.plugin_name, []).extend((s, kind) for s in specs)
    return collected, failed


def _assign_names(order: Sequence[str], collected: dict[str, list[tuple[Any, str]]], failed: dict[str, str],
                  by_name: dict[str, PluginInfo]) -> tuple[dict[str, dict[str, tuple[Any, PluginInfo]]],
                                                           dict[str, list[str]], set[str]]:
    """Decide, plugin by plugin in load order, who holds each name; a plugin registers all of its names or none.

    Returns the holders (kind -> name -> (spec, provider)), the overrides per plugin and the plugins that clashed;
    a plugin that fails here is added to ``failed``.
    """
    holders: dict[str, dict[str, tuple[Any, PluginInfo]]] = {kind: {} for kind, _, _ in _HOOKS}
    overrides: dict[str, list[str]] = {}
    clashes: set[str] = set()
    for plugin_name in order:
        if plugin_name in failed or plugin_name not in collected:
            continue
        provider = by_name.get(plugin_name, PluginInfo(plugin_name, "ok"))
        taken: dict[str, dict[str, tuple[Any, PluginInfo]]] = {kind: {} for kind in holders}
        replaced: list[str] = []
        for spec, kind in collected[plugin_name]:
            if spec.name in taken[kind]:
                failed[plugin_name] = f"registers {kind} {spec.name!r} twice"
                break
            holder = holders[kind].get(spec.name)
            if holder is not None:
                why = _clash(spec, kind, holder[1], provider)
                if why is not None:
                    failed[plugin_name] = why
                    clashes.add(plugin_name)
                    break
                replaced.append(f"{kind} {spec.name!r} of plugin {holder[1].label}")
            taken[kind][spec.name] = (spec, provider)
        else:
            for kind, entries in taken.items():
                holders[kind].update(entries)
            if replaced:
                overrides[plugin_name] = replaced
    return holders, overrides, clashes


def _plugin_reports(infos: Sequence[PluginInfo], failed: dict[str, str], overrides: dict[str, list[str]],
                    clashes: set[str], *, strict: bool) -> list[PluginInfo]:
    """Every plugin's report after registration: failed ones warned about (raised in strict mode), overrides logged."""
    plugins: list[PluginInfo] = []
    for info in infos:
        if info.name in failed:
            info = dataclasses.replace(info, status="failed", error=failed[info.name])
            if strict:
                error = DuplicateNameError if info.name in clashes else PluginLoadError
                raise error(info.failure_message() + " (strict plugin mode is on)")
            log.warning("%s", info.failure_message())
        elif info.name in overrides:
            info = dataclasses.replace(info, overrides=tuple(overrides[info.name]))
            log.info("plugin %s overrides %s", info.label, ", ".join(info.overrides))
        plugins.append(info)
    return plugins


# The process-wide default registry and the validated builders: core modules use these, zoo.api re-exports them.

MODEL_RESERVED = ("in_channels", "num_classes")
_default: Registries | None = None


def load_registry(
    *,
    plugins: Sequence[object] = (),
    autoload: bool | None = None,
    blocked: Sequence[str] | None = None,
    strict: bool | None = None,
) -> Registries:
    """Load plugins into a fresh manager and build the registries (see ``zoo.plugins.get_plugin_manager``)."""
    strict = env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict
    pm, infos = get_plugin_manager(plugins=plugins, autoload=autoload, blocked=blocked, strict=strict)
    return build_registries(pm, infos, strict=strict)


def default_registry(*, strict: bool | None = None) -> Registries:
    """The process-wide registry of installed plugins, built on first use."""
    global _default
    if _default is None:
        _default = load_registry(strict=strict)
    return _default


def reset_default_registry(registries: Registries | None = None) -> None:
    """Forget (or replace) the process-wide registry, e.g. after installing a plugin or changing ZOO_DATA."""
    global _default
    _default = registries


def resolve(registries: Registries | None) -> Registries:
    """``registries`` when given, else the default registry."""
    return registries if registries is not None else default_registry()


@contextlib.contextmanager
def _options_refused(kind: str, name: str, options: Mapping[str, Any]) -> Iterator[None]:
    """A builder's ``ValueError``/``TypeError``/``RuntimeError`` on the user's options is one ``OptionError`` line.

    A builder that checks its options raises ``ValueError(f"width={width!r} must be ...")`` (or a ``ZooError``,
    passed on as is); one that does not fails somewhere inside (``'<' not supported between 'str' and 'int'``).
    Either way the options were the user's: the message names them. With no options given, the same error is a
    bug in the plugin and keeps its traceback.
    """
    try:
        yield
    except ZooError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # torch: "negative dimension -1", "can't allocate"
        if not options:
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        first = (str(exc).strip().splitlines() or [""])[0]
        raise OptionError(f"{kind} {name!r} cannot be built with {given}: {type(exc).__name__}: {first}") from None


def build_model(
    name: str, *, in_channels: int = 3, num_classes: int = 1, registries: Registries | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with validated options.

    Raises:
        UnknownNameError: no such model (the message suggests close names).
        OptionError: an option the model's builder does not take (the message lists the valid ones).
    """
    spec: ModelSpec = resolve(registries).models.get(name)
    if "in_channels" in options or "num_classes" in options:
        raise OptionError("pass in_channels and num_classes as arguments, not as options")
    clean = validate_options(spec.builder, options, what=f"model {name!r}", exclude=MODEL_RESERVED)
    with _options_refused("model", name, clean):
        return spec.builder(in_channels=in_channels, num_classes=num_classes, **clean)


def build_dataset(name: str, *, registries: Registries | None = None, **options: Any) -> SegmentationDataset:
    """Build dataset ``name`` with validated options (e.g. ``root=...``)."""
    spec: DatasetSpec = resolve(registries).datasets.get(name)
    clean = validate_options(spec.builder, options, what=f"dataset {name!r}")
    with _options_refused("dataset", name, clean):
        return spec.builder(**clean)


METRIC_RESERVED = ("num_classes", "ignore_index", "class_names")


def build_metric(
    name: str, *, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None,
    registries: Registries | None = None, **options: Any,
) -> Metric:
    """Build metric ``name`` for ``num_classes`` classes with validated options.

    Metric builders take keyword ``num_classes``, ``ignore_index`` and ``class_names`` (used to name per-class
    columns, e.g. ``dice/vessel``) plus their own options.
    """
    spec: MetricSpec = resolve(registries).metrics.get(name)
    clean = validate_options(spec.builder, options, what=f"metric {name!r}", exclude=METRIC_RESERVED)
    with _options_refused("metric", name, clean):
        return spec.builder(num_classes=num_classes, ignore_index=ignore_index,
                        class_names=tuple(class_names) if class_names is not None else None, **clean)
