"""Hook implementations of the smp adapter; unavailable (not failed) when smp is not installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import zoo
from zoo.errors import PluginUnavailable
from zoo.interfaces import ModelSpec

# find_spec, not import: importing smp costs about 3 s, paid only when one of its models is built.
if importlib.util.find_spec("segmentation_models_pytorch") is None:
    raise PluginUnavailable("segmentation-models-pytorch is not installed; install segzoo[smp]")

from zoo_smp.models import MODELS  # noqa: E402  (after the availability check, on purpose)


@zoo.hookimpl
def zoo_register_models() -> Sequence[ModelSpec]:
    """smp's U-Net, U-Net++ and FPN with a ResNet-34 encoder."""
    return MODELS
