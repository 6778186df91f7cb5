"""Shared fixtures: a private registry built from fake plugins, and real dist-infos on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zoo import api

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_default_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a cached registry and without zoo's plugin environment switches."""
    for var in ("ZOO_DISABLE_PLUGINS", "ZOO_DISABLE_PLUGIN_AUTOLOAD", "ZOO_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ZOO_NO_ALLOCATOR_HINT", "1")  # no marker files in the user's cache from CLI tests
    api.reset_default_registry()
    yield
    api.reset_default_registry()


@pytest.fixture(autouse=True)
def _restore_torch_globals() -> Iterator[None]:
    """Training runs set process-wide torch switches (deterministic algorithms, threads); undo them per test."""
    import torch

    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write an installed-looking distribution (a ``.dist-info`` with a ``segzoo`` entry point) onto sys.path.

    This exercises importlib.metadata discovery for real, not a mock of pluggy.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, version: str, entry_point: str, module: str, source: str) -> Path:
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[segzoo]\n{entry_point} = {module}\n")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        created.append(module)
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)


def require_shared_data(name: str) -> Path:
    """The path of a shared real dataset, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (../shared/data is only present in the project's "
                    f"CI and dev machines)")
    return path
