"""Plugin discovery and loading: one fresh pluggy ``PluginManager`` per registry.

Entry points in the ``segzoo`` group are loaded one by one (pluggy's own loader stops at the first broken
plugin), so a plugin that fails to import or register is reported by name, distribution and version, and the
others still load. Environment switches:

- ``ZOO_DISABLE_PLUGINS=a,b``: block these entry points before they are imported;
- ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points, only plugins passed explicitly;
- ``ZOO_STRICT_PLUGINS=1``: any load failure is an error (``--strict-plugins`` on the command line).

A plugin whose optional dependency is missing raises ``zoo.errors.PluginUnavailable`` at import; it is listed as
``unavailable`` with its message and is not a failure, even in strict mode.

Load order is stable, because the first plugin to register a name keeps it (``zoo.registry.build_registries``):
plugins passed explicitly, then the built-in plugins (distribution ``segzoo``), then every other entry point,
sorted by entry-point name and distribution.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, Literal

import pluggy

from zoo import hookspecs
from zoo.errors import PluginLoadError, PluginUnavailable

__all__ = ["ENTRY_POINT_GROUP", "BUILTIN_DISTRIBUTION", "PluginInfo", "get_plugin_manager", "env_flag", "env_list"]

ENTRY_POINT_GROUP = "segzoo"
BUILTIN_DISTRIBUTION = "segzoo"  # this project's own distribution: its plugins load first and own their names
log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "blocked", "unavailable"]


@dataclass(frozen=True)
class PluginInfo:
    """What ``zoo plugins`` shows for one plugin."""

    name: str
    status: Status
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    hooks: tuple[str, ...] = ()
    error: str | None = None
    overrides: tuple[str, ...] = ()  # e.g. "model 'unet' of plugin 'unet' (segzoo 0.1.0)": names taken with override=True

    @property
    def builtin(self) -> bool:
        """Whether this plugin ships with zoo itself (distribution ``segzoo``)."""
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def label(self) -> str:
        """``'unet' (segzoo 0.1.0)``: how messages name this plugin."""
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.name!r}{dist}"

    def failure_message(self) -> str:
        if self.status == "unavailable":
            return f"plugin {self.label} is unavailable: {self.error}"
        return (
            f"plugin {self.label} failed to load: {self.error}; "
            f"uninstall it or set ZOO_DISABLE_PLUGINS={self.name}"
        )


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list of stripped, non-empty items."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def _unknown_hooks_error(pm: pluggy.PluginManager, plugin: object) -> str | None:
    """A message for hooks the plugin implements that no spec declares (a misspelled hook), else None."""
    unknown = [c.name for c in pm.get_hookcallers(plugin) or () if not c.has_spec()]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, hookspecs.__all__, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    return "implements unknown hook " + ", ".join(parts) + f"; known hooks: {', '.join(hookspecs.__all__)}"


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> str | None:
    """Register ``plugin``; return an error message instead of raising when it is invalid."""
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:  # bad signature, or a name already taken
        return f"{type(exc).__name__}: {exc}"
    error = _unknown_hooks_error(pm, plugin)
    if error:
        pm.unregister(plugin)
    return error


def _load_order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
    """Built-ins first, then the rest by entry-point name and distribution: who registers a name first keeps it."""
    dist = getattr(ep, "dist", None)
    dist_name = dist.name if dist else ""
    return dist_name != BUILTIN_DISTRIBUTION, ep.name, dist_name


def _plugin_name(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _load_entry_point(pm: pluggy.PluginManager, ep: metadata.EntryPoint, blocked: set[str]) -> PluginInfo | None:
    """Import and register one ``segzoo`` entry point; its report (``None`` for one already seen)."""
    dist = getattr(ep, "dist", None)
    common = dict(distribution=dist.name if dist else None, version=dist.version if dist else None,
                  module=ep.value)
    if ep.name in blocked:
        pm.set_blocked(ep.name)
        return PluginInfo(ep.name, "blocked", **common)
    if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
        return None  # the same entry point seen twice (a distribution on sys.path twice)
    status: Status = "failed"
    try:
        module: ModuleType = ep.load()
    except PluginUnavailable as exc:  # a missing optional extra: say so, but it is not a failure
        error: str | None = str(exc)
        status = "unavailable"
    except Exception as exc:  # any import failure is the plugin's, not ours: report, carry on
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = _register(pm, module, ep.name)
        status = "failed" if error else "ok"
    return PluginInfo(ep.name, status, hooks=() if error else _hook_names(pm, module), error=error, **common)


def get_plugin_manager(
    *,
    plugins: Sequence[object] = (),
    autoload: bool | None = None,
    blocked: Iterable[str] | None = None,
    strict: bool | None = None,
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Create a fresh plugin manager and load plugins into it.

    Args:
        plugins: modules or objects with ``@zoo.hookimpl`` functions, registered first (tests, notebooks).
        autoload: load ``segzoo`` entry points; default: unless ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1``.
        blocked: entry-point names not to import; default: ``ZOO_DISABLE_PLUGINS``.
        strict: raise ``PluginLoadError`` on any failure; default: ``ZOO_STRICT_PLUGINS=1``.

    Returns:
        The manager and one ``PluginInfo`` per plugin (loaded, failed or blocked), in load order.

    Raises:
        PluginLoadError: in strict mode, for the first plugin that failed.
    """
    autoload = not env_flag("ZOO_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload
    blocked = set(env_list("ZOO_DISABLE_PLUGINS") if blocked is None else blocked)
    strict = env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []

    for plugin in plugins:
        name = _plugin_name(plugin)
        error = _register(pm, plugin, name)
        infos.append(
            PluginInfo(name, "failed" if error else "ok", module=getattr(plugin, "__name__", None),
                       hooks=() if error else _hook_names(pm, plugin), error=error)
        )

    if autoload:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            info = _load_entry_point(pm, ep, blocked)
            if info is not None:
                infos.append(info)

    for info in infos:
        if info.status == "failed":
            if strict:
                raise PluginLoadError(info.failure_message() + " (strict plugin mode is on)")
            log.warning("%s", info.failure_message())
        elif info.status == "unavailable":
            log.debug("%s", info.failure_message())
    return pm, infos
