"""Hook implementations of the built-in datasets plugin."""

from __future__ import annotations

import zoo
from zoo.interfaces import DatasetSpec

from zoo_datasets.datadir import data_dir_specs
from zoo_datasets.folder import folder
from zoo_datasets.public import camvid, drive, dsb2018, isbi2012, oxford_pets, voc2012
from zoo_datasets.shapes import shapes

DATASETS = (
    DatasetSpec("shapes", shapes, in_channels=3, num_classes=2),
    DatasetSpec("folder", folder),
    DatasetSpec("isbi2012", isbi2012, in_channels=1, num_classes=2),
    DatasetSpec("drive", drive, in_channels=3, num_classes=2),
    DatasetSpec("camvid", camvid, in_channels=3, num_classes=11,
                plan_hints={"orientation_matters": True}),  # street scenes: the sky is up
    DatasetSpec("dsb2018", dsb2018, in_channels=3, num_classes=2),
    DatasetSpec("voc2012", voc2012, in_channels=3, num_classes=21),
    DatasetSpec("oxford-pets", oxford_pets, in_channels=3, num_classes=2),
)


@zoo.hookimpl
def zoo_register_datasets():
    # ZOO_DATA is read here, at registry build time, so `zoo --data-dir DIR` (which sets it first) takes effect.
    return DATASETS + tuple(data_dir_specs({spec.name for spec in DATASETS}))
