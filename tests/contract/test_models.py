"""The model contract, checked for every registered model: the built-in ones and any installed third-party one.

The checks live in ``zoo.testing`` (so plugin authors can run them in their own suites); this module only
parametrises them over the registry of the installed plugins, at the small size ``zoo.testing`` picks.
"""

from __future__ import annotations

from zoo import api
from zoo.testing import parametrize_with_checks

REGISTRY = api.load_registry()
MODEL_NAMES = REGISTRY.models.names()


def test_the_builtin_unet_family_is_registered():
    expected = {"unet", "unet-attn", "unet-res", "unet-bilinear", "unet-nearest", "unet-pixelshuffle",
                "unet-scse", "unetpp", "unet-resnet34"}
    assert expected <= set(MODEL_NAMES)


@parametrize_with_checks(models=MODEL_NAMES, registries=REGISTRY)
def test_model_contract(plugin, check) -> None:
    check(plugin)


# The checks' own tests (each catches the defect it is named after) are in tests/zoo/test_testing_kit.py.
