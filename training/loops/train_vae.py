"""Train the β-VAE on a prepared expression folder (`rnagan train-vae`).

The run folder (docs/contracts.md) gets config.json, environment.json, vae.safetensors (the weights of
the best validation epoch), genes.txt and scaler.npz (copied from the prepared folder), losses.csv and
loss_curves.png, metrics.json, centroids.npz, and umap.png/umap.csv.

- Optimiser: Adam (fused on CUDA). Learning rate set every optimiser step: linear warm-up over
  `warmup_epochs` epochs' worth of steps, then a cosine to `final_lr_ratio` · lr at `epochs`
  (training.utils.schedules).
- Loss: training.loops.losses.vae_loss (MSE averaged over samples × genes + β · KL summed over latent
  dimensions and averaged over samples). Training reconstructs from z = μ + σε; validation from z = μ,
  so the early-stopping signal is not noisy.
- Early stopping: stop when the validation loss has not improved by more than `min_delta` for
  `patience` epochs; the best epoch's weights are the ones saved and evaluated.
- On CUDA the forward passes run under bf16 autocast (losses in fp32; no grad scaler is needed for bf16).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.data.expression import load_prepared
from training.data.scaler import SCALER_FILE
from training.loops.losses import vae_loss
from training.metrics.vae_figures import plot_embedding, plot_losses
from training.networks.vae import (
    CENTROIDS_FILE,
    GENES_FILE,
    WEIGHTS_FILE,
    BetaVAE,
    LoadedVAE,
    VAEConfig,
    save_centroids,
    tissue_centroids,
)
from training.utils.device import autocast, pick_device, seed_everything
from training.utils.io import atomic_path, write_csv, write_json
from training.utils.runs import ConfigError, discard_staged, publish_run_dir, save_weights, stage_run_dir
from training.utils.schedules import warmup_cosine

EMBEDDINGS = ("umap", "pca", "none")
# Paper-sized weights are 1.2 GB: keep the best in memory, write it at most this often and at the end.
SAVE_INTERVAL_S = 120.0
LOSS_COLUMNS = ("epoch", "lr", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "seconds")
METRIC_DEFINITIONS = {
    "rmse": "sqrt(mean over samples × genes of (x̂ − x)²), z-score units; x̂ = decode(μ(x))",
    "mae": "mean over samples × genes of |x̂ − x|, z-score units",
    "mae_percent": "100 · Σ|x̂ − x| / Σ|x| over samples × genes (error relative to the mean magnitude of x)",
}


@dataclass
class TrainVAEConfig:
    """Everything a VAE run was made with. Defaults are the paper's (see training.cli.presets)."""

    data: Path
    preset: str = "paper"
    model: VAEConfig = field(default_factory=VAEConfig)
    epochs: int = 250
    batch_size: int = 128
    lr: float = 5e-5
    beta: float = 0.005
    weight_decay: float = 0.0
    warmup_epochs: float = 5.0
    final_lr_ratio: float = 0.0
    patience: int = 20
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    embedding: str = "umap"
    figure_max_points: int = 2000

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}"),
            (0 <= self.final_lr_ratio <= 1, f"final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda, got {self.device!r}"),
            (self.embedding in EMBEDDINGS, f"embedding must be one of {', '.join(EMBEDDINGS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TrainVAEConfig: {message}")


@dataclass
class EarlyStopping:
    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = 0

    def improved(self, epoch: int, value: float) -> bool:
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def should_stop(self, epoch: int) -> bool:
        return epoch - self.best_epoch >= self.patience


@dataclass
class TrainResult:
    run_dir: Path
    vae: LoadedVAE
    metrics: dict[str, Any]
    history: list[dict[str, float]]


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Batch bounds over n rows; a trailing batch of one row is dropped (BatchNorm cannot train on it)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    return [(a, b) for a, b in bounds if b - a >= 2]


@torch.no_grad()
def evaluate_loss(model: BetaVAE, x: torch.Tensor, *, beta: float, batch_size: int, bf16: bool) -> dict[str, float]:
    """Validation loss terms, reconstructing from z = μ; sample-weighted means over all rows."""
    model.eval()
    recon = kl = 0.0
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        with autocast(x.device, bf16):
            out = model(batch, sample=False)
        terms = vae_loss(out.recon, batch, out.mu, out.logvar, beta=beta)
        recon += terms.recon.item() * len(batch)
        kl += terms.kl.item() * len(batch)
    recon, kl = recon / len(x), kl / len(x)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def train_vae(config: TrainVAEConfig, out: str | Path, *, log: Callable[[str], None] = print) -> TrainResult:
    config.validate()
    prepared = load_prepared(config.data)
    config = replace(config, model=replace(config.model, n_genes=len(prepared.genes)))
    splits = prepared.samples["split"].to_numpy()
    tissues = prepared.samples["tissue"].to_numpy()
    train_rows, val_rows = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
    if len(train_rows) < 2 or len(val_rows) < 1:
        raise ConfigError(
            f"{config.data}: needs at least 2 training and 1 validation sample "
            f"(has {len(train_rows)} and {len(val_rows)})"
        )

    # Built under a hidden name and renamed to `out` when complete: a run killed or failing midway
    # leaves no half run folder (train-vae has no --resume; a rerun starts afresh).
    target = Path(out)  # `out` is reused for model outputs below
    run = staging = stage_run_dir(target, config)
    try:
        for name in (GENES_FILE, SCALER_FILE):
            with atomic_path(run / name) as tmp:
                shutil.copyfile(Path(config.data) / name, tmp)
        seed_everything(config.seed)
        device = pick_device(config.device)
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        model = BetaVAE(config.model).to(device)
        x_train = torch.from_numpy(np.ascontiguousarray(prepared.matrix[train_rows])).to(device)
        x_val = torch.from_numpy(np.ascontiguousarray(prepared.matrix[val_rows])).to(device)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=device.type == "cuda"
        )
        steps_per_epoch = len(_batches(len(train_rows), config.batch_size))
        scheduler = warmup_cosine(
            optimizer,
            total_steps=config.epochs * steps_per_epoch,
            warmup_steps=round(config.warmup_epochs * steps_per_epoch),
            final_ratio=config.final_lr_ratio,
        )
        n_params = sum(p.numel() for p in model.parameters())
        log(
            f"β-VAE {config.model.n_genes} → {'/'.join(map(str, config.model.hidden))} → {config.model.latent_dim} "
            f"({n_params / 1e6:.1f} M parameters) on {device}; {len(train_rows)} train / {len(val_rows)} val "
            f"samples, {steps_per_epoch} steps an epoch; run folder {run}"
        )

        shuffler = torch.Generator().manual_seed(config.seed)
        stopper = EarlyStopping(config.patience, config.min_delta)
        history: list[dict[str, float]] = []
        best_state: dict[str, torch.Tensor] | None = None
        last_save = time.monotonic()
        started = time.monotonic()
        for epoch in range(1, config.epochs + 1):
            tick = time.monotonic()
            model.train()
            order = torch.randperm(len(train_rows), generator=shuffler).to(device)
            sums = torch.zeros(2, device=device)  # recon, kl; summed over samples, read once an epoch
            seen = 0
            for a, b in _batches(len(train_rows), config.batch_size):
                batch = x_train[order[a:b]]
                with autocast(device, config.bf16):
                    out = model(batch)
                terms = vae_loss(out.recon, batch, out.mu, out.logvar, beta=config.beta)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()
                scheduler.step()
                sums += torch.stack([terms.recon.detach(), terms.kl.detach()]) * (b - a)
                seen += b - a
            train_recon, train_kl = (sums / seen).tolist()
            val = evaluate_loss(model, x_val, beta=config.beta, batch_size=max(config.batch_size, 256), bf16=config.bf16)
            if not all(math.isfinite(v) for v in (train_recon, train_kl, val["loss"])):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch} (train recon {train_recon}, KL {train_kl}, "
                    f"val loss {val['loss']}); try a lower --lr"
                )
            row = {
                "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_recon + config.beta * train_kl, "train_recon": train_recon, "train_kl": train_kl,
                "val_loss": val["loss"], "val_recon": val["recon"], "val_kl": val["kl"],
                "seconds": time.monotonic() - tick,
            }
            history.append(row)
            improved = stopper.improved(epoch, val["loss"])
            if improved:
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if time.monotonic() - last_save > SAVE_INTERVAL_S:
                    save_weights(run / WEIGHTS_FILE, best_state, metadata={"epoch": str(epoch)})
                    last_save = time.monotonic()
            write_losses(run / "losses.csv", history)
            log(
                f"epoch {epoch:>3}/{config.epochs}  train recon {train_recon:.4f} KL {train_kl:9.2f}  "
                f"val recon {val['recon']:.4f} KL {val['kl']:9.2f} loss {val['loss']:.4f}  "
                f"lr {row['lr']:.2e}  {row['seconds']:.1f} s" + ("  *" if improved else "")
            )
            if stopper.should_stop(epoch):
                log(f"early stop: no improvement for {config.patience} epochs (best epoch {stopper.best_epoch})")
                break
        train_seconds = time.monotonic() - started

        assert best_state is not None  # the first epoch always improves on inf (losses are finite)
        save_weights(run / WEIGHTS_FILE, best_state, metadata={"epoch": str(stopper.best_epoch)})
        model.load_state_dict(best_state)
        del x_train, x_val, optimizer
        vae = LoadedVAE(model, prepared.genes, device=device, scaler=prepared.scaler, run_dir=run)
        vae.centroids = tissue_centroids(vae, prepared.matrix[train_rows], tissues[train_rows])
        save_centroids(run / CENTROIDS_FILE, vae.centroids)

        metrics: dict[str, Any] = {
            "best_epoch": stopper.best_epoch,
            "best_val_loss": stopper.best,
            "epochs_run": len(history),
            "stopped_early": len(history) < config.epochs,
            "train_seconds": round(train_seconds, 2),
            "parameters": n_params,
            "device": str(device),
            "definitions": METRIC_DEFINITIONS,
        }
        for split in ("val", "test"):
            rows = np.flatnonzero(splits == split)
            metrics[split] = split_metrics(vae, prepared.matrix[rows], tissues[rows]) if len(rows) else None
        write_json(run / "metrics.json", metrics)
        plot_losses(history, run / "loss_curves.png", best_epoch=stopper.best_epoch)
        if config.embedding != "none":
            plot_embedding(vae, prepared.matrix, tissues, prepared.samples["sample_id"].to_numpy(), run,
                           method=config.embedding, max_points=config.figure_max_points, seed=config.seed)
        test = metrics["test"] or metrics["val"]
        log(
            f"best epoch {stopper.best_epoch}: {'test' if metrics['test'] else 'val'} RMSE {test['rmse']:.4f}, "
            f"MAE {test['mae_percent']:.1f} %; wrote {target}"
        )
        run = publish_run_dir(staging, target)
        vae.run_dir = run
    finally:
        discard_staged(staging)
    return TrainResult(run_dir=run, vae=vae, metrics=metrics, history=history)


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    err = (x_hat - x).astype(np.float64)
    return {
        "samples": int(len(x)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "mae_percent": float(100.0 * np.abs(err).sum() / max(np.abs(x).astype(np.float64).sum(), 1e-12)),
    }


def split_metrics(vae: LoadedVAE, x: np.ndarray, tissues: np.ndarray) -> dict[str, Any]:
    x_hat = vae.reconstruct(x)
    result: dict[str, Any] = reconstruction_metrics(x, x_hat)
    result["per_tissue"] = {
        str(t): reconstruction_metrics(x[tissues == t], x_hat[tissues == t]) for t in sorted(set(tissues))
    }
    return result


def write_losses(path: Path, history: list[dict[str, float]]) -> None:
    write_csv(path, LOSS_COLUMNS, ([str(row[c]) if c == "epoch" else f"{row[c]:.6g}" for c in LOSS_COLUMNS]
                                   for row in history))
