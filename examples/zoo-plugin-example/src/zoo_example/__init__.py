"""An example Seg Zoo plugin package: a SegNet-style model, a generated dataset and an F-beta metric."""
