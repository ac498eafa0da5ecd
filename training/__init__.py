"""RNA-GAN science code: expression, slides and tiles, the β-VAE, GAN and RNA-GAN.

Pure PyTorch/NumPy: nothing here imports Django, so it runs on a GPU box that has only torch,
numpy, lmdb and openslide.
"""

__version__ = "0.1.0"
