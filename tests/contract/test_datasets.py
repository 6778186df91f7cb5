"""The dataset contract, checked (with ``zoo.testing``) for every registered dataset that needs no files.

A dataset whose builder takes a ``root`` reads files; those are covered by their plugin's own tests on fixtures
and on the shared real data. Generated ones (``shapes`` and any installed third-party one) are checked here at
the tiny size ``zoo.testing.SMALL_DATASET_OPTIONS`` picks.
"""

from __future__ import annotations

import inspect

from zoo import api
from zoo.testing import check_dataset_plugin, parametrize_with_checks

REGISTRY = api.load_registry()
FILE_FREE = [spec.name for spec in REGISTRY.datasets if "root" not in inspect.signature(spec.builder).parameters]


def test_the_builtin_generated_dataset_is_checked():
    assert "shapes" in FILE_FREE


@parametrize_with_checks(datasets=FILE_FREE, registries=REGISTRY)
def test_dataset_contract(plugin, check) -> None:
    check(plugin)


def test_shapes_multiclass_grayscale_contract() -> None:
    # Through the builder, not the spec: the spec declares the default 3 channels and 2 classes.
    builder = REGISTRY.datasets.get("shapes").builder
    options = {"image_size": 16, "train_items": 2, "val_items": 1, "test_items": 1, "num_classes": 4, "channels": 1}
    results = check_dataset_plugin(builder, options=options)
    assert [r.status for r in results] == ["passed"] * len(results)
