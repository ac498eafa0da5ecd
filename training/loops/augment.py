"""Batched colour jitter and flips for real tiles, on whatever device the batch is on.

Each sample draws its own flips and jitter factors. Brightness, contrast, saturation and hue compose
into one affine colour map per sample (a 3×3 matrix and a grey offset), applied in one einsum and
clamped once, so a batch of 256 tiles costs a few elementwise passes on the GPU. Hue turns the chroma
plane in YIQ space, which keeps grey grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Rec. 601 luma, the weights of torchvision's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)


@dataclass(frozen=True)
class AugmentConfig:
    """Jitter strengths: each factor is drawn uniformly in [1 − s, 1 + s]; hue in turns of ±hue.

    `fakes`: generated batches pass through the same augmentation before the critic sees them
    (differentiably, as in DiffAugment), for every arm. Jitter on real tiles alone would make jittered
    colours part of "real" and teach the generator to draw them.
    """

    hflip: bool = True
    vflip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    fakes: bool = True

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"augment.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"augment.hue must be in [0, 0.5], got {self.hue}")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] → float32 [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images.float()


def colour_matrices(
    n: int, config: AugmentConfig, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample brightness b, contrast c and the 3×3 saturation·hue map, from uniforms u (n, 4)."""
    signed = u * 2 - 1
    b = 1 + config.brightness * signed[:, 0]
    c = 1 + config.contrast * signed[:, 1]
    s = 1 + config.saturation * signed[:, 2]
    theta = config.hue * 2 * math.pi * signed[:, 3]
    device = u.device
    luma = torch.tensor(LUMA, device=device)
    eye = torch.eye(3, device=device)
    sat = s[:, None, None] * eye + (1 - s)[:, None, None] * luma.expand(3, 3)  # rows: s·x + (1−s)·grey
    cos, sin = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(n, 3, 3, device=device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    to_yiq = _RGB_TO_YIQ.to(device)
    hue = (torch.linalg.inv(to_yiq) @ rot.double() @ to_yiq).float()
    return b, c, hue @ sat


def augment(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(N, 3, H, W) uint8 or [0, 1] float → augmented float32 in [−1, 1], same device and layout.

    The generator must live on the images' device; it alone decides every random choice.
    """
    x = to_unit(images)
    n = x.shape[0]
    u = torch.rand(n, 6, generator=generator, device=x.device)
    if config.hflip:
        x = torch.where((u[:, 4] < 0.5)[:, None, None, None], x.flip(-1), x)
    if config.vflip:
        x = torch.where((u[:, 5] < 0.5)[:, None, None, None], x.flip(-2), x)
    b, c, mix = colour_matrices(n, config, u[:, :4])
    # brightness then contrast around the image's mean grey: x ↦ c·b·x + (1 − c)·b·mean_grey; the
    # saturation and hue maps fix grey, so the offset passes through them unchanged.
    luma = torch.tensor(LUMA, device=x.device)
    mean_grey = torch.einsum("c,nchw->n", luma, x) / (x.shape[-1] * x.shape[-2])
    matrix = (c * b)[:, None, None] * mix
    offset = ((1 - c) * b * mean_grey)[:, None, None, None]
    out = torch.einsum("nij,njhw->nihw", matrix, x) + offset
    return out.clamp_(0, 1).mul_(2).sub_(1)
