"""The plugin author's guide documents every hook with its exact signature (datasette's test_docs)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from zoo import hookspecs

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _signature(function) -> str:
    """``zoo_register_models() -> Sequence[ModelSpec]``, annotations as written (they are strings here)."""
    sig = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
                       for p in sig.parameters.values())
    returns = f" -> {sig.return_annotation}" if sig.return_annotation is not sig.empty else ""
    return f"{function.__name__}({params}){returns}"


@pytest.mark.parametrize("hook", hookspecs.__all__)
def test_every_hook_is_documented_with_its_exact_signature(hook):
    headings = re.findall(r"^### `(.+)`$", GUIDE.read_text(), flags=re.MULTILINE)
    assert _signature(getattr(hookspecs, hook)) in headings


def test_the_guide_documents_no_hook_that_does_not_exist():
    documented = re.findall(r"^### `(zoo_\w+)\(", GUIDE.read_text(), flags=re.MULTILINE)
    assert sorted(documented) == sorted(hookspecs.__all__)


def test_the_guide_names_every_kit_entry_point_and_plugin_status():
    text = GUIDE.read_text()
    for name in ("check_model_plugin", "check_dataset_plugin", "check_metric_plugin", "parametrize_with_checks",
                 "ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS", "--strict-plugins", "PluginUnavailable",
                 "`unavailable`", "`failed`", "`blocked`", "zoo plugins new", "[project.entry-points.segzoo]"):
        assert name in text, name
