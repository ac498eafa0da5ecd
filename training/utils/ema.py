"""Exponential moving average of the generator, and re-estimating its BatchNorm statistics.

The EMA copy averages parameters; its BatchNorm buffers are copied from the live generator. Those
running statistics describe the live weights, not the averaged ones, so before the EMA generator is
exported or sampled, `recalibrate_batchnorm` re-measures them on fresh inputs (on a copy, so training
and its exact resume are untouched).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import update_bn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """Early steps average over fewer past weights, so the EMA does not drag the random init along."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1 - self.decay_at(step)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, weight)
        for ema_buf, buf in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


def recalibrate_batchnorm(model: nn.Module, inputs: Iterable[torch.Tensor]) -> nn.Module:
    """A copy of `model`, in eval mode, whose BatchNorm running statistics are the plain average over
    `inputs` (torch's `update_bn`, as for SWA weights); `model` itself is left alone."""
    model = copy.deepcopy(model)
    update_bn(inputs, model)
    return model.eval()
