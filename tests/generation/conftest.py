from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generation.models import Checkpoint


def he_like_tile(seed: int, size: int = 256) -> np.ndarray:
    """A smooth pink/purple image: compresses like tissue, unlike white noise."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.random((size, size)), 3)
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    pink = np.array([230, 150, 190.0])
    purple = np.array([90, 60, 150.0])
    rgb = pink * (1 - field[..., None]) + purple * field[..., None]
    return np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def tile_folder(tmp_path):
    folder = tmp_path / "real_tiles"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(he_like_tile(i)).save(folder / f"slide{i % 2}_{i}.png")
    return folder


@pytest.fixture
def gan_checkpoint(db):
    return Checkpoint.objects.create(
        name="lung-gan-test", kind=Checkpoint.Kind.GAN, tissue="Lung", run_dir="/nonexistent", weights_sha256="0" * 64
    )


@pytest.fixture
def gan_run(tmp_path):
    """A tiny untrained GAN run folder in the format `rnagan train-gan` writes (config + EMA weights)."""
    return make_gan_run(tmp_path / "gan-run")


def make_gan_run(run, *, conditioning: str = "none", tissue: str = "Lung", size: int = 64, seed: int = 0):
    import torch

    from training.inference.generate import save_generator_run
    from training.networks.gan import GANConfig, Generator, init_weights

    torch.manual_seed(seed)
    generator = Generator(GANConfig(input_dim=8, image_size=size, g_width=8, g_max_width=32, d_width=8, d_max_width=32))
    init_weights(generator)
    return save_generator_run(run, generator, conditioning=conditioning, tissue=tissue)


@pytest.fixture
def small_tiles(settings):
    """The catalog size matches the tiny generator, so nothing is resized."""
    settings.RNAGAN_TILE_SIZE = 64
    return 64
