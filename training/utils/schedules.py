"""Learning-rate schedules shared by the trainers: linear warm-up, then cosine decay.

The unit is the optimiser step. Trainers that think in epochs (the β-VAE's `warmup_epochs`) convert with
`steps_per_epoch` before building the schedule, so the learning rate changes smoothly within an epoch
instead of jumping at its boundaries.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine_factor(step: int, *, total_steps: int, warmup_steps: int, final_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate before optimiser step `step` (0-based).

    Rises linearly from 1/(warmup_steps+1) to 1 over the first `warmup_steps` steps (never 0, so the
    first step already learns), then follows half a cosine from 1 down to `final_ratio` at
    `total_steps`, and stays there if training runs longer.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"final_ratio must be in [0, 1], got {final_ratio}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int, final_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler to step once after every `optimizer.step()`."""
    warmup_steps = min(warmup_steps, max(0, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(
            step, total_steps=total_steps, warmup_steps=warmup_steps, final_ratio=final_ratio
        ),
    )
