"""Hook implementations of the built-in U-Net plugin: the U-Net family of ``unet.py`` and ``resnet.py``."""

from __future__ import annotations

from collections.abc import Sequence

import zoo
from zoo.interfaces import ModelSpec


@zoo.hookimpl
def zoo_register_models() -> Sequence[ModelSpec]:
    """The U-Net family: unet, unet-attn, unet-res, ..., unetpp, unet-resnet34."""
    # Imported here so that loading the plugin (e.g. for `zoo plugins`) does not import torch.
    from zoo_unet import resnet, unet

    return (*unet.MODELS, *resnet.MODELS)
