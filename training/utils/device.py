"""Seeding, device choice and the one bf16 autocast rule every loop and sampler follows."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from training.utils.errors import OptionError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise OptionError(f"--device {requested!r}: give auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"--device {requested} was asked for, but no CUDA device is visible (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise OptionError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no grad scaler is needed for bf16); nothing on the CPU or when disabled."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
