"""What the evaluation reads: real tiles per sample from the tile store, generated tiles per sample from a
run folder, and the EMA generator of every saved checkpoint (for the epochs-to-quality curve)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.samples import match_tissue
from training.inference.generate import LoadedGenerator, generate
from training.utils.io import read_json
from training.utils.runs import load_state_checked, load_weights

CHECKPOINT_DIR = "checkpoints"


def takes_expression(generator: LoadedGenerator) -> bool:
    """RNA-conditioned arms draw from a sample's expression; GAN and the noise ablation do not."""
    return generator.conditioning.startswith("rna")


@dataclass
class RealTiles:
    """Real tiles of a set of samples: uint8 (N, H, W, 3) with the sample, tissue and split of each."""

    tiles: np.ndarray
    sample_ids: list[str]
    tissues: list[str]
    splits: list[str]

    def where(self, mask: np.ndarray) -> RealTiles:
        idx = np.flatnonzero(mask)
        return RealTiles(self.tiles[idx], [self.sample_ids[i] for i in idx], [self.tissues[i] for i in idx],
                         [self.splits[i] for i in idx])

    def of_split(self, *splits: str) -> RealTiles:
        return self.where(np.isin(self.splits, splits))

    def of_tissue(self, tissue: str) -> RealTiles:
        return self.where(np.asarray(self.tissues) == tissue)


def samples_of_tissues(samples: pd.DataFrame, tissues: Sequence[str]) -> pd.DataFrame:
    names = sorted({n for t in tissues for n in match_tissue(list(samples["tissue"].unique()), t)})
    if not names:
        raise ValueError(f"no samples of tissue(s) {', '.join(tissues)} in the expression folder")
    return samples[samples["tissue"].isin(names)].reset_index(drop=True)


def load_real_tiles(store: str | os.PathLike[str], samples: pd.DataFrame, *, per_sample: int, image_size: int,
                    seed: int = 0) -> RealTiles:
    """Up to `per_sample` tiles of each sample's slide (chosen with `seed`), resized to `image_size`."""
    from training.data.dataset import TileDataset
    from training.data.tile_store import TileStore

    with TileStore(store, lock=False) as handle:
        present = set(handle.slides())
    rows = samples[samples["slide_id"].isin(present)]
    if rows.empty:
        raise ValueError(f"{store}: none of the {len(samples)} samples' slides is in the tile store")
    info = rows.set_index("slide_id")
    dataset = TileDataset(store, slides=rows["slide_id"].tolist(), image_size=image_size,
                          max_tiles_per_slide=per_sample, seed=seed)
    tiles, ids, tissues, splits = [], [], [], []
    for i in range(len(dataset)):
        item = dataset[i]
        tiles.append(item["image"].permute(1, 2, 0).numpy())
        row = info.loc[item["slide_id"]]
        ids.append(str(row["sample_id"]))
        tissues.append(str(row["tissue"]))
        splits.append(str(row["split"]))
    return RealTiles(np.stack(tiles), ids, tissues, splits)


def generate_for_samples(generator: LoadedGenerator, sample_ids: Sequence[str], *, per_sample: int,
                         seed: int = 0, batch_size: int = 256) -> tuple[np.ndarray, list[str]]:
    """`per_sample` tiles for each sample: from its expression (conditioned arms) or from noise alone,
    with seeds that differ between samples, so an unconditioned arm's tiles are independent draws."""
    tiles, owners = [], []
    latents = None
    if takes_expression(generator):
        expression = np.stack([generator.expression_for_sample(s) for s in sample_ids])
        latents = generator.encode(expression)
    for i, sample in enumerate(sample_ids):
        seeds = [seed + 100_003 * i + k for k in range(per_sample)]
        cond = None if latents is None else latents[i]
        tiles.append(generate(generator, per_sample, seeds=seeds, latents=cond, batch_size=batch_size))
        owners += [sample] * per_sample
    return np.concatenate(tiles), owners


def saved_checkpoints(run: str | os.PathLike[str]) -> list[tuple[int, int, Path]]:
    """(step, epoch, weights file) of every checkpoint a run kept, oldest first."""
    folder = Path(run) / CHECKPOINT_DIR
    out = []
    for meta in sorted(folder.glob("step-*.json")):
        weights = meta.with_suffix(".safetensors")
        if weights.exists():
            data = read_json(meta)
            out.append((int(data["step"]), int(data["epoch"]), weights))
    return out


def with_checkpoint(generator: LoadedGenerator, weights: Path) -> LoadedGenerator:
    """A copy of a loaded generator carrying a checkpoint's EMA weights (BatchNorm buffers included)."""
    import copy

    state = {k[len("ema."):]: v for k, v in load_weights(weights).items() if k.startswith("ema.")}
    model = copy.deepcopy(generator.model)
    load_state_checked(model, state, weights)
    clone = copy.copy(generator)
    clone.model = model.to(generator.device).eval().requires_grad_(False)
    return clone

