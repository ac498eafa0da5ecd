"""A trained run folder's file names and the error for one that cannot be used. Torch-free: the web
process checks and registers checkpoints with these without loading a network."""

from __future__ import annotations

from training.utils.errors import RnaganError

CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator_ema.safetensors"  # the EMA generator a GAN run exports for sampling


class CheckpointError(RnaganError, ValueError):
    """A run folder whose weights and config do not belong together, or that lacks them."""
