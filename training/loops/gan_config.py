"""What a GAN / RNA-GAN training run is (saved as its config.json) and how it runs (free to change on resume)."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.loops.augment import AugmentConfig
from training.loops.wgan import WGANConfig
from training.networks.gan import GANConfig
from training.networks.inputs import check_mode


@dataclass(frozen=True)
class OptimConfig:
    """Adam for both networks, constant learning rates (the paper's values)."""

    lr_g: float = 1e-3
    lr_d: float = 4e-3
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999


@dataclass(frozen=True)
class GANTrainConfig:
    tiles: str = ""
    tissue: str = ""
    conditioning: str = "none"
    vae_run: str | None = None
    expression_dir: str | None = None
    split: str = "train"  # with an expression folder: train on the slides of this split ("all": every slide)
    preset: str = "paper"
    epochs: int = 40
    batch_size: int = 64  # per process
    tiles_per_slide: int | None = 600
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0: at the end of every epoch only
    keep_checkpoints: int = 2
    log_every: int = 20
    grid_rows: int = 4
    grid_columns: int = 8
    bn_batches: int = 8  # batches that re-measure the EMA generator's BatchNorm statistics
    model: GANConfig = field(default_factory=GANConfig)
    wgan: WGANConfig = field(default_factory=WGANConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        check_mode(self.conditioning)
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be ≥ 1 (got {self.epochs}, {self.batch_size})")
        if self.split not in ("train", "val", "test", "all"):
            raise ValueError(f"split must be train, val, test or all, got {self.split!r}")


@dataclass
class Runtime:
    """How to run, not what to train: free to change between a run and its resume."""

    device: str = "auto"
    workers: int | None = None  # None: 8 on CUDA, 0 on CPU
    compile: str = "auto"  # auto (CUDA only) | on | off
    progress: bool = True
    max_steps: int | None = None  # stop (with a checkpoint) once this many steps are done in total
    max_seconds: float | None = None  # stop (with a checkpoint) after this much training time in this process
