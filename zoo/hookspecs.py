"""Hook specifications for zoo plugins. Every hook is prefixed ``zoo_``; see docs/plugins.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # annotations only; avoids import cycles (pytest, tox)
    from collections.abc import Sequence

    from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec

PROJECT_NAME = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)  # private to core; plugins use zoo.hookimpl

__all__ = ["zoo_register_models", "zoo_register_datasets", "zoo_register_metrics"]

# --------------------------------------------------------------------------- registration hooks
# Each hook is called once per plugin when a registry is built; results of all plugins are merged.


@hookspec
def zoo_register_models() -> Sequence[ModelSpec]:
    """Return the models this plugin provides. Called once, when the registry is built.

    Names must be unique across installed plugins: on a clash the first registrant keeps the name (built-ins
    load first) and the later plugin is reported as failed, naming both (DuplicateNameError in strict mode). A
    spec with ``override=True`` replaces a built-in of the same name.
    """


@hookspec
def zoo_register_datasets() -> Sequence[DatasetSpec]:
    """Return the datasets this plugin provides (same rules as zoo_register_models)."""


@hookspec
def zoo_register_metrics() -> Sequence[MetricSpec]:
    """Return the metrics this plugin provides (same rules as zoo_register_models)."""
