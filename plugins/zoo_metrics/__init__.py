"""Built-in plugin: segmentation metrics (Dice, IoU, accuracy, precision, recall, HD95, surface distance)."""
