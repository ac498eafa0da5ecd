"""Feature extractors for the distribution metrics: Inception-v3 pool features (only from the pytorch-fid
weights file, given on the command line) and the project's in-domain encoder, trained on real tiles.

**Inception** (`InceptionFeatures`): torchvision's inception_v3 architecture with 1008 classes and no
auxiliary head, with the four block types patched the way the TensorFlow graph behind FID computes
them (average pools that leave padding out of the mean; max pool in the last block), loaded from the
plain state dict pytorch-fid publishes as `pt_inception-2015-12-05-6726825d.pth`. Tiles are resized
bilinearly to 299² and scaled to [−1, 1]; the 2,048-d output of the final average pool is the feature.
Nothing is downloaded: a missing file, a file that is not a state dict, or a state dict of another
network is an `InceptionWeightsError` naming the file and what is wrong.

**In-domain encoder** (`EncoderConfig`, `train_encoder`, `load_encoder`): ImageNet features say little
about H&E at 64 px, so every run is also measured in the features of a small CNN trained on the real
training-split tiles to tell their *slides* apart (one class a slide, flips and quarter turns as
augmentation). Telling samples apart is what makes the features sensitive to the morphology that differs
between samples, which is what both the FD and sample retrieval need. Four strided 3×3 convolutions
with BatchNorm and ReLU, global average pool → `feature_dim` features (the classifier layer is dropped).
The encoder is trained once per evaluation folder, seeded, saved as safetensors + JSON and reused for
every run, so all arms are measured with the same features. Its FD is never called FID.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.utils.io import read_json, write_json
from training.utils.runs import config_from_dict, load_weights, save_weights

INCEPTION_CLASSES = 1008
INCEPTION_SIZE = 299
ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_CONFIG = "encoder.json"


class InceptionWeightsError(ValueError):
    """The file given as Inception weights is not pytorch-fid's FID Inception state dict."""


def metrics_device() -> torch.device:
    """The small networks of the suite train on the GPU when there is one; results do not depend on it
    beyond rounding."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_float(tiles: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (N, 3, H, W) → float32 (N, 3, H, W) in [0, 1]."""
    x = torch.as_tensor(np.asarray(tiles))
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 tiles (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return x.float().div_(255)


# --- Inception ------------------------------------------------------------------------------------------

def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the taps inside the image, not by 9.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _fid_blocks():
    from torchvision.models import inception as tv

    class A(tv.InceptionA):
        def _forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))]

    class C(tv.InceptionC):
        def _forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                          self.branch7x7dbl_4, self.branch7x7dbl_5):
                d = layer(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))]

    class E(tv.InceptionE):
        max_pool = False  # the second E block of the FID graph pools by maximum

        def _forward(self, x):
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
            return [self.branch1x1(x), b3, d, self.branch_pool(pooled)]

    class E2(E):
        max_pool = True

    return A, C, E, E2


def fid_inception() -> nn.Module:
    """The FID Inception network with uninitialised weights (load them with `load_inception`)."""
    from torchvision.models import inception_v3

    A, C, E, E2 = _fid_blocks()
    net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=INCEPTION_CLASSES)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
    net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = C(768, 128), C(768, 160), C(768, 160), C(768, 192)
    net.Mixed_7b, net.Mixed_7c = E(1280), E2(2048)
    net.fc = nn.Identity()  # the pool features are the output; the 1008-class layer is checked, then dropped
    return net.eval()


def load_inception(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> InceptionFeatures:
    path = Path(path)
    if not path.is_file():
        raise InceptionWeightsError(f"--inception-weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable file gets the same explanation
        raise InceptionWeightsError(
            f"--inception-weights {path}: not a PyTorch state dict ({type(exc).__name__}); expected pytorch-fid's "
            "pt_inception-2015-12-05-6726825d.pth"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InceptionWeightsError(f"--inception-weights {path}: the file holds no state dict of tensors")
    fc = state.get("fc.weight")
    if fc is None or tuple(fc.shape) != (INCEPTION_CLASSES, 2048):
        shape = None if fc is None else tuple(fc.shape)
        raise InceptionWeightsError(
            f"--inception-weights {path}: fc.weight has shape {shape}, the FID Inception has "
            f"({INCEPTION_CLASSES}, 2048); this is not pytorch-fid's weights file (torchvision's ImageNet "
            "Inception gives other features and must not be called FID)"
        )
    net = fid_inception()
    wanted = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = net.state_dict()
    missing = sorted(set(own) - set(wanted))
    unexpected = sorted(set(wanted) - set(own))
    wrong = sorted(k for k in set(own) & set(wanted) if own[k].shape != wanted[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise InceptionWeightsError(f"--inception-weights {path}: not the FID Inception ({'; '.join(parts)})")
    net.load_state_dict(wanted)
    return InceptionFeatures(net.to(device), device=torch.device(device))


@dataclass
class InceptionFeatures:
    net: nn.Module
    device: torch.device
    name: str = "inception-v3 pool (pytorch-fid weights)"
    dim: int = 2048

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = []
        for start in tqdm(range(0, len(tiles), batch_size), desc="inception", disable=not progress, leave=False):
            x = to_float(tiles[start : start + batch_size]).to(self.device)
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
            out.append(self.net(2 * x - 1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


# --- In-domain encoder ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EncoderConfig:
    image_size: int = 64
    width: int = 32
    feature_dim: int = 64  # few held-out tiles per tissue: a covariance of more dimensions is singular
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    min_steps: int = 300  # small sets get more epochs: BatchNorm statistics need steps to settle
    seed: int = 0


class TileEncoder(nn.Module):
    def __init__(self, config: EncoderConfig, classes: int):
        super().__init__()
        w = config.width
        chans = [3, w, 2 * w, 4 * w, config.feature_dim]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.classify = nn.Linear(config.feature_dim, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    u = torch.rand(n, 3, generator=gen)
    x = torch.where((u[:, 0] < 0.5)[:, None, None, None], x.flip(-1), x)
    x = torch.where((u[:, 1] < 0.5)[:, None, None, None], x.flip(-2), x)
    return torch.where((u[:, 2] < 0.5)[:, None, None, None], x.transpose(-1, -2), x)


def train_encoder(tiles: np.ndarray, labels: Sequence[int], config: EncoderConfig, *, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> Encoder:
    """Train the encoder on real tiles (uint8 NHWC) to classify `labels` (their slide)."""
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(labels_t) != len(tiles) or len(tiles) < 2:
        raise ValueError(f"need ≥ 2 tiles with one label each, got {len(tiles)} tiles, {len(labels_t)} labels")
    classes = int(labels_t.max()) + 1
    torch.manual_seed(config.seed)
    device = metrics_device()
    model = TileEncoder(config, classes).to(device)
    x_all = resize_batch(to_float(tiles), config.image_size)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = max(1, len(x_all) // config.batch_size)
    epochs = max(config.epochs, -(-config.min_steps // steps))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps * epochs)
    gen = torch.Generator().manual_seed(config.seed)
    model.train()
    for epoch in tqdm(range(epochs), desc="in-domain encoder", disable=not progress, leave=False):
        order = torch.randperm(len(x_all), generator=gen)
        correct = total = 0
        for b in range(steps):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            target = labels_t[idx].to(device)
            logits = model(_augment(x_all[idx], gen).to(device))
            loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == target).sum())
            total += len(idx)
        if log and epoch == epochs - 1:
            log(f"in-domain encoder: {classes} slides, training accuracy {correct / max(total, 1):.2f}")
    return Encoder(model.eval().cpu(), config, classes)


@dataclass
class Encoder:
    model: TileEncoder
    config: EncoderConfig
    classes: int
    name: str = "in-domain encoder (slide classifier on real training tiles)"

    @property
    def dim(self) -> int:
        return self.config.feature_dim

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray, *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        out = []
        device = metrics_device()
        model = self.model.to(device)
        for start in tqdm(range(0, len(tiles), batch_size), desc="encode", disable=not progress, leave=False):
            x = resize_batch(to_float(tiles[start : start + batch_size]).to(device), self.config.image_size)
            out.append(model.features(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def save(self, folder: str | os.PathLike[str]) -> None:
        folder = Path(folder)
        save_weights(folder / ENCODER_WEIGHTS, self.model.state_dict())
        write_json(folder / ENCODER_CONFIG, {"config": asdict(self.config), "classes": self.classes})


def load_encoder(folder: str | os.PathLike[str]) -> Encoder:
    folder = Path(folder)
    meta = read_json(folder / ENCODER_CONFIG)
    config = config_from_dict(EncoderConfig, meta["config"], source=str(folder / ENCODER_CONFIG))
    model = TileEncoder(config, int(meta["classes"]))
    model.load_state_dict(load_weights(folder / ENCODER_WEIGHTS))
    return Encoder(model.eval(), config, int(meta["classes"]))
