"""Seg Zoo: a plugin-based U-Net segmentation model zoo with a benchmark harness.

Add a model, dataset or metric from your own package without forking zoo::

    # pyproject.toml of your package
    [project.entry-points.segzoo]
    myplugin = "my_package.plugin"

    # my_package/plugin.py
    import zoo
    from zoo.interfaces import ModelSpec

    def tiny_fcn(*, in_channels: int, num_classes: int, width: int = 16) -> torch.nn.Module:
        \"\"\"A tiny fully convolutional net.\"\"\"
        ...

    @zoo.hookimpl
    def zoo_register_models():
        return [ModelSpec("tiny-fcn", tiny_fcn)]

``import zoo`` loads no plugins and touches neither GPU nor disk; the registry is built on first use.
See docs/plugins.md for the full guide.
"""

from __future__ import annotations

from importlib import metadata

import pluggy

from zoo.hookspecs import PROJECT_NAME

try:
    __version__ = metadata.version("segzoo")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)  #: decorator to mark zoo plugin hooks

__all__ = ["__version__", "hookimpl"]
