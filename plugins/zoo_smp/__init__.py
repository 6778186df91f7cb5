"""Adapter plugin: segmentation_models_pytorch (smp) models in the zoo (``pip install 'segzoo[smp]'``).

Registers ``smp-unet-resnet34``, ``smp-unetpp-resnet34`` and ``smp-fpn-resnet34``, built with
``encoder_weights=None`` so nothing is ever downloaded; pretrained encoder weights come only from a local file
(the ``encoder_weights`` option). Without smp installed the plugin registers nothing and ``zoo plugins`` shows
it as unavailable with the install command.
"""
