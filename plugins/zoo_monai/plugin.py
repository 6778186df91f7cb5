"""Hook implementations of the MONAI adapter; unavailable (not failed) when MONAI is not installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import zoo
from zoo.errors import PluginUnavailable
from zoo.interfaces import ModelSpec

# find_spec, not import: importing MONAI costs about 2.5 s, paid only when one of its models is built.
if importlib.util.find_spec("monai") is None:
    raise PluginUnavailable("MONAI is not installed; install segzoo[monai]")

from zoo_monai.models import MODELS  # noqa: E402  (after the availability check, on purpose)


@zoo.hookimpl
def zoo_register_models() -> Sequence[ModelSpec]:
    """MONAI's BasicUNet, AttentionUnet and residual UNet, in 2D."""
    return MODELS
