"""The GAN networks: a DCGAN-shaped generator that upsamples by resize + 3×3 convolution, and a critic.

Generator: latent (input_dim) → linear → 4×4 feature map → one block per doubling (resize ×2, 3×3
convolution, BatchNorm, ReLU) → tanh RGB at 64, 128 or 256 px. No transposed convolutions: their
uneven kernel overlap is what drew the checkerboard artifacts the paper reports. BatchNorm normalises
over the batch only in training mode; in eval mode it uses running statistics, so a sampled tile never
depends on the other tiles of its batch.

Nearest resize followed by a 3×3 convolution equals four 2×2 convolutions on the low-resolution map
(one per output phase, with the 3×3 kernel's rows and columns summed in pairs). `UpConv` computes it
that way by default: identical results, 16 instead of 36 multiply-adds per input pixel and channel
pair, and no 4× upsampled copy of the input. The stored weights are the 3×3 kernel either way.

Critic: DCGAN strided 4×4 convolutions with LeakyReLU and no normalisation at all (a per-sample
gradient penalty needs each sample's score to depend on that sample alone), linear output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.utils.constants import IMAGE_SIZES

UPSAMPLE_MODES = ("nearest", "bilinear")


@dataclass(frozen=True)
class GANConfig:
    """Network shapes. Widths are the channels next to the image; they double towards 4×4 up to the cap."""

    input_dim: int = 2048
    image_size: int = 256
    g_width: int = 64
    g_max_width: int = 2048
    d_width: int = 64
    d_max_width: int = 2048
    upsample: str = "nearest"
    g_batchnorm: bool = True
    noise_dim: int = 0  # rna-proj: standard-normal noise concatenated after the latent (0: added narrowly)
    cond_dim: int = 0  # the critic's projection input (the VAE latent size); 0: an unconditional critic
    aux_head: bool = False  # the critic also regresses the latent from the image (rna-proj)

    def __post_init__(self) -> None:
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        for name in ("input_dim", "g_width", "g_max_width", "d_width", "d_max_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.noise_dim < 0 or self.cond_dim < 0 or self.noise_dim >= self.input_dim:
            raise ValueError(f"noise_dim ({self.noise_dim}) and cond_dim ({self.cond_dim}) must be ≥ 0 and "
                             f"noise_dim below input_dim ({self.input_dim})")
        if self.aux_head and not self.cond_dim:
            raise ValueError("aux_head needs cond_dim (the latent size it regresses)")

    @property
    def n_doublings(self) -> int:
        return int(math.log2(self.image_size // 4))

    def generator_channels(self) -> list[int]:
        """Channels at 4×4, 8×8, … up to the last hidden resolution (image_size / 2)."""
        n = self.n_doublings
        return [min(self.g_width * 2 ** (n - 1 - k), self.g_max_width) for k in range(n)]

    def critic_channels(self) -> list[int]:
        """Channels after each strided convolution, from image_size / 2 down to 4×4."""
        return [min(self.d_width * 2**k, self.d_max_width) for k in range(self.n_doublings)]


# After a nearest ×2 resize, output row 2i reads source rows (i−1, i, i) and row 2i+1 reads (i, i, i+1):
# PHASE_TAPS[a, u, p] says which of the 3 kernel taps p land on source tap u of output phase a.
PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))
# Input maps up to this size run the four phases as separate convolutions (exact FLOPs); larger ones
# share one convolution, whose one-pixel border costs little there and which keeps the GPU busier.
SPLIT_PHASES_UP_TO = 16


def fold_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(O, I, 3, 3) kernel → (4·O, I, 2, 2): one 2×2 kernel per output phase, channels ordered (a, b, O)."""
    out_ch, in_ch = weight.shape[:2]
    taps = torch.tensor(PHASE_TAPS, dtype=weight.dtype, device=weight.device)  # (a, u, p)
    # (p, q) → (a, b, u, v) as one matrix: folding is one matmul and one transpose copy.
    mixing = torch.einsum("aup,bvq->pqabuv", taps, taps).reshape(9, 16)
    folded = (weight.reshape(out_ch * in_ch, 9) @ mixing).view(out_ch * in_ch, 4, 4)  # (O·I, a·b, u·v)
    return folded.transpose(0, 1).reshape(4 * out_ch, in_ch, 2, 2)


class UpConv(nn.Module):
    """Resize ×2 then 3×3 convolution (zero padding 1)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "nearest", bias: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
        self.mode = mode
        self.folded = mode == "nearest"  # the phase trick is exact only for nearest
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def _kernel(self) -> torch.Tensor:
        w = self.conv.weight
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return fold_kernel(w)
        # Sampling without gradients: fold once per weight version (the big layers cost a copy each).
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, fold_kernel(w))
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.folded:
            kwargs = {"align_corners": False} if self.mode == "bilinear" else {}
            return self.conv(F.interpolate(x, scale_factor=2, mode=self.mode, **kwargs))
        out_ch = self.conv.out_channels
        kernel = self._kernel()
        bias = self.conv.bias.repeat(4) if self.conv.bias is not None else None
        layout = _memory_format(x)
        n, _, h, wd = x.shape
        padded = F.pad(x, (1, 1, 1, 1)).contiguous(memory_format=layout)  # keep NHWC for cuDNN
        if h <= SPLIT_PHASES_UP_TO:
            # Small maps: one exact convolution per phase; a shared one would add a (H+1)²/H² border.
            windows = [
                padded[:, :, a : a + h + 1, b : b + wd + 1].contiguous(memory_format=layout)
                for a, b in _PHASES
            ]
            parts = [
                F.conv2d(
                    window,
                    kernel[k * out_ch : (k + 1) * out_ch],
                    None if bias is None else bias[k * out_ch : (k + 1) * out_ch],
                )
                for k, window in enumerate(windows)
            ]
        else:
            # Large maps: the four phases in one convolution over the padded map, (N, 4·O, H+1, W+1).
            phases = F.conv2d(padded, kernel.contiguous(memory_format=layout), bias)
            parts = [
                phases[:, k * out_ch : (k + 1) * out_ch, a : a + h, b : b + wd]
                for k, (a, b) in enumerate(_PHASES)
            ]
        out = torch.empty(
            (n, out_ch, 2 * h, 2 * wd), dtype=parts[0].dtype, device=x.device, memory_format=layout
        )
        for part, (a, b) in zip(parts, _PHASES, strict=True):
            out[:, :, a::2, b::2] = part
        return out


_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) phase of channel block k = 2·row + column


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if nhwc else torch.contiguous_format


class Generator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        channels = config.generator_channels()
        norm = nn.BatchNorm2d if config.g_batchnorm else (lambda c: nn.Identity())
        self.stem = nn.Linear(config.input_dim, channels[0] * 16, bias=not config.g_batchnorm)
        # BatchNorm2d on the 4×4 map (not BatchNorm1d on the vector) so a batch of one still trains.
        self.stem_norm = norm(channels[0])
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            blocks += [
                UpConv(c_in, c_out, config.upsample, bias=not config.g_batchnorm),
                norm(c_out),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = UpConv(channels[-1], 3, config.upsample)
        self.channels_last = False

    def use_channels_last(self) -> Generator:
        """NHWC feature maps: what tensor cores want for bf16 convolutions on CUDA."""
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, input_dim) → images (N, 3, S, S) in [-1, 1]."""
        x = self.stem(z).view(z.shape[0], -1, 4, 4)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.stem_norm(x))
        return torch.tanh(self.to_rgb(self.blocks(x)))


class Critic(nn.Module):
    """Score an image, optionally given its condition c (the VAE latent of the sample it should show).

    With `cond_dim`, the score is the projection critic of Miyato & Koyama (2018): ψ(φ(x)) + ⟨E·c, φ(x)⟩,
    φ the flattened features, E a linear embedding of the latent. The critic can then reward a tile only
    for matching its own sample, which an image-only critic cannot. With `aux_head`, a linear head
    also predicts c from φ(x) (an auxiliary regression loss in training.loops.wgan).
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in config.critic_channels():
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 16, 1)
        self.embed = nn.Linear(config.cond_dim, c_in * 16, bias=False) if config.cond_dim else None
        self.aux = nn.Linear(c_in * 16, config.cond_dim) if config.aux_head else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, with_aux: bool = False):
        """images (N, 3, S, S) in [-1, 1] (and their conditions (N, cond_dim)) → scores (N,), unbounded;
        with `with_aux`, also the predicted conditions (N, cond_dim)."""
        h = self.features(x).flatten(1)
        score = self.head(h).squeeze(1)
        if self.embed is not None:
            if cond is None:
                raise ValueError("this critic is conditioned: pass the latent of each image")
            score = score + (self.embed(cond.to(h.dtype)) * h).sum(1)
        if with_aux:
            return score, (self.aux(h) if self.aux is not None else None)
        return score


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def generator_flops(config: GANConfig) -> int:
    """Floating-point operations (2 per multiply-add) of one tile's forward pass, as computed here.

    Counts the linear layer and the convolutions (nearest: the folded 2×2 phase form, with its one-pixel
    border above SPLIT_PHASES_UP_TO; bilinear: a 3×3 convolution at the output resolution);
    normalisation and activations are negligible.
    """
    channels = config.generator_channels() + [3]
    macs = config.input_dim * channels[0] * 16
    size = 4
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
        if config.upsample == "nearest":
            positions = size**2 if size <= SPLIT_PHASES_UP_TO else (size + 1) ** 2
            macs += 4 * c_out * c_in * 4 * positions
        else:
            macs += c_out * c_in * 9 * (2 * size) ** 2
        size *= 2
    return 2 * macs


def critic_flops(config: GANConfig) -> int:
    """Floating-point operations of one image's critic forward pass."""
    macs, c_in, size = 0, 3, config.image_size
    for c_out in config.critic_channels():
        size //= 2
        macs += c_out * c_in * 16 * size * size
        c_in = c_out
    return 2 * (macs + c_in * 16)
