from __future__ import annotations

import numpy as np
import pytest
import torch

from training.synthetic.histology import PROGRAM_NAMES, render_tile, tissue_profile


def downscale(tile: np.ndarray, size: int) -> np.ndarray:
    x = torch.from_numpy(tile).permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(x, size=size, mode="area")[0].permute(1, 2, 0).round().byte().numpy()


@pytest.fixture(scope="session")
def small_cohort():
    """A small lung cohort drawn directly (no slides): programs per sample spread over ±1.5 SD, and a
    few 64 px tiles (256 px at 0.5 µm/px, downscaled like a tiny-preset run sees them) of each."""
    rng = np.random.default_rng(7)
    profile = tissue_profile("Lung")
    samples, tiles, owners = [], [], []
    for i in range(16):
        programs = {p: profile.mean[p] + profile.sd[p] * rng.uniform(-1.5, 1.5) for p in PROGRAM_NAMES}
        samples.append({"sample_id": f"S{i:02d}", **programs})
        for k in range(3):
            tiles.append(downscale(render_tile("Lung", programs, size=256, seed=100 * i + k), 64))
            owners.append(f"S{i:02d}")
    import pandas as pd

    return pd.DataFrame(samples), np.stack(tiles), owners
