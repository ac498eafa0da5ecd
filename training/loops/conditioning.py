"""What the generator is fed in training: the latent table of the prepared expression rows and the batches
drawn from it (the modes and the sampling inputs are training.networks.inputs).

- `none` (GAN): z ~ N(0, I) of the input dimension.
- `rna` (RNA-GAN): the VAE mean μ of the tile's own expression sample, plus noise uniform in
  [−0.3, 0.3]. μ is computed once, without gradients, for every row of the prepared expression matrix
  and kept as a table indexed by expression row (`LatentTable`).
- `noise` (the paper's ablation): the narrow uniform noise alone.

Nothing here normalises across the batch. The original code standardised the input per feature over a
batch that came from one slide, which subtracted the shared latent away; every input row here is a
function of its own sample and its own noise only.

Training draws the noise for a whole batch from one device generator; sampling draws each tile's noise
from its own CPU `torch.Generator` seeded with that tile's seed, so a tile never depends on its batch or
device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from training.data.expression import load_prepared
from training.data.samples import match_tissue
from training.networks.inputs import check_mode, latent_dim_of, takes_expression, uniform_noise
from training.networks.vae import gene_order, load_vae
from training.utils.runs import load_weights, save_weights


@dataclass
class LatentTable:
    """VAE means of every expression row, shape (rows, latent_dim), float32."""

    latents: torch.Tensor

    @property
    def dim(self) -> int:
        return int(self.latents.shape[1])

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    @classmethod
    def from_encoder(
        cls, encode: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray, *, chunk: int = 512
    ) -> LatentTable:
        """Encode a (rows, genes) expression matrix once; `encode` returns μ as a NumPy array."""
        parts = []
        with torch.no_grad():
            for start in range(0, len(matrix), chunk):
                mu = np.asarray(encode(np.ascontiguousarray(matrix[start : start + chunk], dtype=np.float32)))
                if mu.ndim != 2 or len(mu) != min(chunk, len(matrix) - start):
                    raise ValueError(
                        f"VAE encoder returned shape {mu.shape} for {len(matrix[start : start + chunk])} rows"
                    )
                parts.append(torch.from_numpy(mu.astype(np.float32, copy=False)))
        latents = torch.cat(parts) if parts else torch.zeros(0, 0)
        if not torch.isfinite(latents).all():
            raise ValueError("VAE encoder returned non-finite latents")
        return cls(latents.contiguous())

    def to(self, device: torch.device | str) -> LatentTable:
        return LatentTable(self.latents.to(device))

    def save(self, path: str | os.PathLike[str]) -> None:
        save_weights(path, {"latents": self.latents})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatentTable:
        return cls(load_weights(path)["latents"])

    def lookup(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(self.latents.device, torch.long)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            bad = rows[(rows < 0) | (rows >= len(self))][0].item()
            raise IndexError(
                f"expression row {bad} is outside the latent table (0..{len(self) - 1}); "
                "a tile without an expression sample cannot condition RNA-GAN"
            )
        return self.latents.index_select(0, rows)


def training_input(
    mode: str,
    batch_size: int,
    input_dim: int,
    *,
    generator: torch.Generator,
    device: torch.device | str,
    rows: torch.Tensor | None = None,
    table: LatentTable | None = None,
    noise_dim: int = 0,
) -> torch.Tensor:
    """A training batch of generator inputs; `rows` (expression rows of the real tiles) for the RNA arms."""
    if mode == "none":
        return torch.randn(batch_size, input_dim, generator=generator, device=device)
    if mode == "noise":
        return uniform_noise((batch_size, input_dim), generator=generator, device=device)
    if not takes_expression(mode):
        check_mode(mode)
    if table is None or rows is None:
        raise ValueError(f"{mode} conditioning needs the latent table and the expression rows of the batch")
    width = latent_dim_of(mode, input_dim, noise_dim)
    if table.dim != width:
        raise ValueError(f"latent table has dimension {table.dim}, the generator expects {width}")
    latents = table.lookup(rows)
    if mode == "rna-proj" and noise_dim > 0:
        return torch.cat([latents, torch.randn(batch_size, noise_dim, generator=generator, device=device)], 1)
    return latents + uniform_noise((batch_size, input_dim), generator=generator, device=device)


@dataclass
class ConditioningData:
    """What a training run needs beyond the tiles: the latent table and the rows it shows and samples.

    `grid_rows` are the expression rows of the sample grid (held-out samples of the tissue for RNA-GAN)
    and `grid_labels` their sample IDs; `train_rows` are the rows the generator is trained on, used to
    draw inputs when the EMA generator's BatchNorm statistics are re-measured.
    """

    table: LatentTable | None = None
    grid_rows: list[int] | None = None
    grid_labels: list[str] | None = None
    train_rows: list[int] | None = None


def load_rna_conditioning(
    vae_run: str | os.PathLike[str],
    expression_dir: str | os.PathLike[str],
    *,
    tissue: str,
    split: str = "train",
    n_grid: int = 4,
    device: torch.device | str | None = None,
) -> tuple[ConditioningData, object]:
    """Load the VAE and the prepared folder, check they belong together, encode every row once.

    Returns the conditioning data and the PreparedExpression (for the tile dataset's expression rows).
    """
    vae = load_vae(vae_run, device=device)
    prepared = load_prepared(expression_dir)
    # Same genes in another order is fine (reindex); another gene set is refused with the counts.
    order = gene_order(prepared.genes, vae.genes, source=f"expression folder {expression_dir}")
    if vae.scaler is not None:
        # The original GAN scripts refit their own scaler; the z-scores must be the ones the VAE learnt.
        mean, sd = prepared.scaler.mean[order], prepared.scaler.sd[order]  # scaler genes = genes.txt
        if not (np.allclose(mean, vae.scaler.mean) and np.allclose(sd, vae.scaler.sd)):
            raise ValueError(
                f"expression folder {expression_dir} was z-scored with other statistics than the VAE run "
                f"{vae_run} (scaler.npz differs): prepare both from the same training split"
            )
    matrix = prepared.matrix if np.array_equal(order, np.arange(len(order))) else prepared.matrix[:, order]
    table = LatentTable.from_encoder(vae.encode, matrix)
    return describe_rows(
        prepared.samples, table, tissue=tissue, split=split, n_grid=n_grid, source=str(expression_dir)
    ), prepared


def describe_rows(
    samples, table: LatentTable, *, tissue: str, split: str, n_grid: int, source: str
) -> ConditioningData:
    """Pick the training rows and the held-out grid rows of one tissue from splits.csv's table."""
    names = match_tissue(list(samples["tissue"].unique()), tissue)
    if not names:
        known = ", ".join(sorted(samples["tissue"].unique()))
        raise ValueError(f"{source}: no samples of tissue {tissue!r} (tissues there: {known})")
    of_tissue = samples["tissue"].isin(names).to_numpy()
    in_split = np.ones(len(samples), bool) if split == "all" else (samples["split"] == split).to_numpy()
    train_rows = np.flatnonzero(of_tissue & in_split).tolist()
    if not train_rows:
        raise ValueError(f"{source}: tissue {tissue!r} has no samples in split {split!r}")
    held_out = [
        r for s in ("val", "test") for r in np.flatnonzero(of_tissue & (samples["split"] == s).to_numpy())
    ]
    grid_rows = [int(r) for r in (held_out or train_rows)[:n_grid]]
    labels = [str(samples["sample_id"].iloc[r]) for r in grid_rows]
    return ConditioningData(table=table, grid_rows=grid_rows, grid_labels=labels, train_rows=train_rows)
