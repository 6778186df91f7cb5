"""Adapter plugin: MONAI's 2D segmentation networks in the zoo (``pip install 'segzoo[monai]'``).

Registers ``monai-basicunet``, ``monai-attentionunet`` and ``monai-unet-res`` (MONAI's residual ``UNet``).
MONAI's networks are plain modules: nothing is downloaded. Without MONAI installed the plugin registers nothing
and ``zoo plugins`` shows it as unavailable with the install command.
"""
