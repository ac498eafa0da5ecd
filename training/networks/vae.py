"""The β-VAE that compresses a sample's expression into the latent the RNA-GAN generator draws from.

Network: encoder genes → hidden[0] → hidden[1] → (μ, log σ²) heads of `latent_dim`; the decoder mirrors
it. Hidden layers are Linear → BatchNorm → LeakyReLU. The output layer is linear: inputs are z-scores,
which routinely exceed ±1, so the original code's tanh could never reconstruct them.

A trained run folder (see docs/contracts.md) is read back with `load_vae`, from safetensors and JSON
only, by the GAN trainer and by the web workers alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from training.data.genes import read_gene_list
from training.data.scaler import SCALER_FILE, Scaler, load_scaler
from training.utils.device import pick_device
from training.utils.errors import RnaganError
from training.utils.io import atomic_path, read_json
from training.utils.runs import ConfigError, config_from_dict, load_weights, state_mismatches

WEIGHTS_FILE = "vae.safetensors"
GENES_FILE = "genes.txt"
CENTROIDS_FILE = "centroids.npz"
CONFIG_FILE = "config.json"

# Keeps exp(log σ²) finite in fp32 (and under bf16 autocast) when a head diverges early in training.
LOGVAR_RANGE = (-30.0, 15.0)


class VAEError(RnaganError, ValueError):
    """A user-fixable problem with a VAE run, its inputs or its arguments."""


class GeneMismatchError(VAEError):
    """An expression table whose genes are not the VAE's genes."""


class UnknownTissueError(VAEError):
    """A tissue the VAE has no centroid for."""


@dataclass
class VAEConfig:
    """Network shape. Defaults are the paper's (n_genes is replaced by the prepared folder's gene count)."""

    n_genes: int = 19198
    hidden: tuple[int, ...] = (6000, 4096)
    latent_dim: int = 2048
    input_dropout: float = 0.0
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.n_genes < 1 or self.latent_dim < 1:
            raise ConfigError(f"VAEConfig: n_genes and latent_dim must be positive ({self.n_genes}, {self.latent_dim})")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"VAEConfig.hidden must list one or more positive sizes, got {self.hidden}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(f"VAEConfig.input_dropout must be in [0, 1), got {self.input_dropout}")


class VAEOutput(NamedTuple):
    recon: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def _block(n_in: int, n_out: int, slope: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU(slope))


class BetaVAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        widths = [config.n_genes, *config.hidden]
        # Dropout holds no parameters, so the weight names do not depend on whether it is used.
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.encoder = nn.Sequential(
            *(_block(a, b, config.negative_slope) for a, b in zip(widths[:-1], widths[1:], strict=True))
        )
        self.mu_head = nn.Linear(widths[-1], config.latent_dim)
        self.logvar_head = nn.Linear(widths[-1], config.latent_dim)
        back = [config.latent_dim, *reversed(config.hidden)]
        self.decoder = nn.Sequential(
            *(_block(a, b, config.negative_slope) for a, b in zip(back[:-1], back[1:], strict=True))
        )
        self.output = nn.Linear(back[-1], config.n_genes)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.input_dropout(x))
        return self.mu_head(h), self.logvar_head(h).clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.decoder(z))

    def forward(self, x: torch.Tensor, *, sample: bool = True) -> VAEOutput:
        """Reconstruct `x`; with `sample` the decoder sees z = μ + σ·ε, otherwise z = μ."""
        mu, logvar = self.encode(x)
        if sample:
            std = torch.exp(0.5 * logvar.float())
            z = (mu.float() + std * torch.randn_like(std)).to(mu.dtype)
        else:
            z = mu
        return VAEOutput(self.decode(z), mu, logvar)


def gene_order(columns: Sequence[str], genes: Sequence[str], *, source: str = "expression table") -> np.ndarray:
    """Indices into `columns` that put them in the VAE's gene order.

    Order may differ; the set may not: a VAE cannot read genes it was not trained on, and zero-filling
    missing genes silently would change its output. The error says how many differ and names a few.
    """
    position = {name: i for i, name in enumerate(columns)}
    if len(position) != len(columns):
        seen: set[str] = set()
        dupes = [c for c in columns if c in seen or seen.add(c)]
        raise GeneMismatchError(f"{source}: duplicate gene column(s): {_few(dupes)}")
    missing = [g for g in genes if g not in position]
    wanted = set(genes)
    extra = [c for c in columns if c not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the VAE's {len(genes)} genes are missing ({_few(missing)})")
        if extra:
            parts.append(f"{len(extra)} gene(s) are not among the VAE's ({_few(extra)})")
        raise GeneMismatchError(f"{source}: genes differ from the VAE's: " + "; ".join(parts))
    return np.fromiter((position[g] for g in genes), dtype=np.int64, count=len(genes))


def _few(names: Sequence[str], k: int = 5) -> str:
    shown = ", ".join(names[:k])
    return shown + (f", … ({len(names) - k} more)" if len(names) > k else "")


class LoadedVAE:
    """A VAE ready for inference: numpy in, numpy out, in the VAE's gene order, in eval mode."""

    def __init__(
        self,
        model: BetaVAE,
        genes: Sequence[str],
        centroids: dict[str, np.ndarray] | None = None,
        *,
        device: torch.device | str = "cpu",
        scaler: Scaler | None = None,
        run_dir: Path | None = None,
        batch_size: int = 1024,
    ):
        self.model = model.to(device).eval()
        self.config: VAEConfig = model.config
        self.genes = list(genes)
        self.centroids = dict(centroids or {})
        self.device = torch.device(device)
        self.scaler = scaler
        self.run_dir = run_dir
        self.batch_size = batch_size

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def tissues(self) -> list[str]:
        return sorted(self.centroids)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """μ of each row of `x` (z-scored expression in `self.genes` order), shape (n, latent_dim)."""
        rows = self._as_rows(x, self.config.n_genes, "expression")
        return self._map(rows, lambda t: self.model.encode(t)[0], self.latent_dim)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Expression (z-scores, `self.genes` order) decoded from latents, shape (n, n_genes)."""
        return self._map(self._as_rows(z, self.latent_dim, "latent"), self.model.decode, self.config.n_genes)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))

    def tissue(self, name: str) -> str:
        """The canonical tissue name (exact, else unique case-insensitive match)."""
        if name in self.centroids:
            return name
        folded = [t for t in self.centroids if t.casefold() == name.casefold()]
        if len(folded) == 1:
            return folded[0]
        known = ", ".join(self.tissues) or "none (the run has no centroids.npz)"
        raise UnknownTissueError(f"unknown tissue {name!r}; this VAE knows: {known}")

    def centroid(self, tissue: str) -> np.ndarray:
        return self.centroids[self.tissue(tissue)]

    def sample(self, tissue: str, n: int, seed: int = 0, *, scale: float = 1.0) -> np.ndarray:
        """Synthetic expression for `tissue`: decode(centroid + scale · ε), ε ~ N(0, I).

        ε is drawn with numpy from `seed`, so a seed gives the same samples on any device.
        """
        if n < 0:
            raise VAEError(f"n must be >= 0, got {n}")
        centre = self.centroid(tissue)
        noise = np.random.default_rng(seed).standard_normal((n, self.latent_dim), dtype=np.float32)
        return self.decode(centre[None, :] + np.float32(scale) * noise)

    def shift(self, x: np.ndarray, source: str, target: str) -> np.ndarray:
        """Move expression of `source` tissue toward `target`: decode(μ(x) + centroid(target) − centroid(source))."""
        delta = self.centroid(target) - self.centroid(source)
        return self.decode(self.encode(x) + delta[None, :])

    @staticmethod
    def _as_rows(a: np.ndarray, width: int, what: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != width:
            raise VAEError(f"{what} must have shape (n, {width}) or ({width},), got {a.shape}")
        if not np.isfinite(a).all():
            raise VAEError(f"{what} contains NaN or infinite values")
        # torch.from_numpy refuses negative strides (a view such as matrix[:, ::-1]): copy those.
        return np.ascontiguousarray(a)

    def _map(self, rows: np.ndarray, fn, width: int) -> np.ndarray:
        outputs = [np.zeros((0, width), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                batch = torch.from_numpy(rows[start : start + self.batch_size]).to(self.device)
                outputs.append(fn(batch).float().cpu().numpy())
        return np.concatenate(outputs)


def read_centroids(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name].astype(np.float32) for name in data.files}


def tissue_centroids(vae: LoadedVAE, x: np.ndarray, tissues: Sequence[str]) -> dict[str, np.ndarray]:
    """Mean μ of the rows of `x` of each tissue, in sorted tissue order."""
    tissues = np.asarray(tissues, dtype=object)
    if len(tissues) != len(x):
        raise VAEError(f"{len(x)} expression rows but {len(tissues)} tissue labels")
    mu = vae.encode(x)
    return {str(t): mu[tissues == t].mean(axis=0).astype(np.float32) for t in sorted(set(tissues))}


def save_centroids(path: str | os.PathLike[str], centroids: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{name: np.asarray(c, dtype=np.float32) for name, c in centroids.items()})
    return path


def load_vae(run_dir: str | os.PathLike[str], device: str | torch.device | None = None) -> LoadedVAE:
    """Rebuild a trained VAE from its run folder: config.json, vae.safetensors, genes.txt, centroids.npz."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: VAE run folder not found")
    raw = read_json(run / CONFIG_FILE)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise VAEError(f"{run / CONFIG_FILE}: no 'model' section; is this a VAE run folder?")
    config = config_from_dict(VAEConfig, raw["model"], source=str(run / CONFIG_FILE))
    genes = read_gene_list(run / GENES_FILE)
    if len(genes) != config.n_genes:
        raise VAEError(f"{run / GENES_FILE}: lists {len(genes)} genes but config.json says n_genes={config.n_genes}")

    model = BetaVAE(config)
    state = load_weights(run / WEIGHTS_FILE)
    problems = state_mismatches(model, state)
    if problems:
        raise VAEError(f"{run / WEIGHTS_FILE}: weights do not match config.json: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)

    centroids: dict[str, np.ndarray] = {}
    if (run / CENTROIDS_FILE).exists():
        centroids = read_centroids(run / CENTROIDS_FILE)
        bad = [name for name, c in centroids.items() if c.shape != (config.latent_dim,)]
        if bad:
            raise VAEError(f"{run / CENTROIDS_FILE}: centroid(s) {_few(bad)} are not of latent size {config.latent_dim}")
    scaler = load_scaler(run / SCALER_FILE) if (run / SCALER_FILE).exists() else None
    if scaler is not None and list(scaler.genes) != genes:
        raise VAEError(f"{run / SCALER_FILE}: genes differ from {run / GENES_FILE}")
    return LoadedVAE(
        model, genes, centroids, device=pick_device("auto" if device is None else str(device)), scaler=scaler, run_dir=run
    )

