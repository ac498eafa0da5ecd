"""Detectability: how well a small CNN tells real tiles from generated ones, cross-validated.

Equal numbers of real and generated tiles (the larger set is subsampled), stratified k-fold
(scikit-learn); in each fold a fresh CNN (three strided convolutions, global pool, linear) is trained
with flips and tested on the held-out fold. 0.5 means the generated tiles cannot be told apart; 1.0 means
every one is caught. The network is small on purpose: it measures obvious tells (colour, texture,
artifacts), not the ceiling of a forensic detector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold
from torch import nn
from tqdm import tqdm

from training.metrics.features import _augment, metrics_device, resize_batch, to_float


@dataclass(frozen=True)
class DetectConfig:
    folds: int = 5
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 16
    image_size: int = 64
    max_per_class: int = 1000
    min_steps: int = 150
    seed: int = 0


def small_cnn(width: int, classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    c_in = 3
    for c_out in (width, 2 * width, 4 * width):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


MIN_STEPS = 150  # small sets get more epochs: BatchNorm's running statistics need that many steps to settle


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
                   lr: float, gen: torch.Generator, min_steps: int = MIN_STEPS) -> nn.Module:
    """Adam with a one-cycle schedule, cross-entropy, flips/quarter turns; returns the model in eval mode.
    Runs `epochs` epochs, or more when that is under `min_steps` optimiser steps."""
    device = metrics_device()
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, int(np.ceil(len(x) / batch_size)))
    epochs = max(epochs, int(np.ceil(min_steps / steps)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps * epochs)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for b in range(steps):
            idx = order[b * batch_size : (b + 1) * batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples; keep the schedule's step count anyway
                sched.step()
                continue
            loss = F.cross_entropy(model(_augment(x[idx], gen).to(device) * 2 - 1), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    device = next(model.parameters()).device
    return np.concatenate([F.softmax(model(x[s : s + batch_size].to(device) * 2 - 1), 1).float().cpu().numpy()
                           for s in range(0, len(x), batch_size)])


def detectability(real: np.ndarray, fake: np.ndarray, config: DetectConfig = DetectConfig(), *,
                  progress: bool = False) -> dict:
    """Cross-validated real-vs-generated accuracy of a small CNN (uint8 NHWC tiles)."""
    rng = np.random.default_rng(config.seed)
    n = min(len(real), len(fake), config.max_per_class)
    if n < config.folds:
        raise ValueError(f"detectability needs at least {config.folds} tiles of each kind, got {n}")
    pick = lambda tiles: tiles[np.sort(rng.choice(len(tiles), n, replace=False))]  # noqa: E731
    x = resize_batch(to_float(np.concatenate([pick(real), pick(fake)])), config.image_size)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    accuracies = []
    folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed).split(np.zeros(len(y)), y)
    for k, (train, test) in enumerate(tqdm(list(folds), desc="detectability", disable=not progress, leave=False)):
        torch.manual_seed(config.seed + k)
        gen = torch.Generator().manual_seed(config.seed + k)
        model = fit_classifier(small_cnn(config.width, 2), x[train], torch.as_tensor(y[train]),
                               epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, gen=gen,
                               min_steps=config.min_steps)
        accuracies.append(float((predict_proba(model, x[test]).argmax(1) == y[test]).mean()))
    return {"accuracy": float(np.mean(accuracies)), "accuracy_sd": float(np.std(accuracies)),
            "folds": accuracies, "tiles_per_class": int(n), "config": asdict(config)}
