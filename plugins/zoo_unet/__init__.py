"""Built-in plugin: the reference U-Net (Ronneberger et al. 2015) and its variants."""
