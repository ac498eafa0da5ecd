"""Training throughput of the WGAN-GP step (images/s and achieved GFLOP/s).

Times what `rnagan train-gan` does per step minus data loading: augmentation of uint8 tiles already on
the device, n_critic critic updates with the per-sample gradient penalty, one generator update, the EMA
update. On CUDA: bf16 autocast, channels_last, fused Adam, compiled generator forward; the default is
the paper-sized networks at 256 px (target on one H100: ≥ 2,000 images/s). On CPU the default is the
tiny preset (64 px, narrow networks). FLOPs per image are counted once, with torch.utils.flop_counter's
formulas, on an eager step of batch 2 (forward, backward and the penalty's double backward).

    .venv/bin/python bench/train_gan.py                       # paper sizes on CUDA, tiny on CPU
    .venv/bin/python bench/train_gan.py --preset small --batch-size 128 --steps 50
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.cli.gan import GAN_PRESETS  # noqa: E402
from training.cli.presets import build_config  # noqa: E402
from training.loops.augment import augment  # noqa: E402
from training.loops.conditioning import training_input  # noqa: E402
from training.loops.gan_config import GANTrainConfig
from training.loops.wgan import train_step  # noqa: E402
from training.networks.gan import Critic, Generator, count_parameters, init_weights  # noqa: E402
from training.utils.device import pick_device
from training.utils.ema import EMA  # noqa: E402


class CountFlops(TorchDispatchMode):
    """torch.utils.flop_counter's formulas without its module tracker, whose hooks refuse the
    penalty's autograd.grad on a leaf input."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def build(config, device, *, compile_g: bool):
    torch.manual_seed(0)
    g, d = Generator(config.model), Critic(config.model)
    init_weights(g)
    init_weights(d)
    g, d = g.to(device), d.to(device)
    cuda = device.type == "cuda"
    if cuda:
        g = g.use_channels_last()
        d = d.to(memory_format=torch.channels_last)
    extra = {"fused": True} if cuda else {}
    opt_g = torch.optim.Adam(g.parameters(), lr=config.optim.lr_g, betas=config.optim.betas, **extra)
    opt_d = torch.optim.Adam(d.parameters(), lr=config.optim.lr_d, betas=config.optim.betas, **extra)
    g_run = torch.compile(g) if compile_g else g
    return g, d, g_run, opt_g, opt_d, EMA(g, config.optim.ema_decay)


def make_step(config, device, g, d, g_run, opt_g, opt_d, ema, batch):
    cuda = device.type == "cuda"
    rng = torch.Generator(device=device).manual_seed(0)
    size = config.model.image_size
    reals_u8 = torch.randint(
        0, 256, (config.wgan.n_critic, batch, 3, size, size), dtype=torch.uint8, device=device
    )
    if cuda:
        reals_u8 = [x.contiguous(memory_format=torch.channels_last) for x in reals_u8]

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    counter = [0]

    def step():
        reals = [augment(x, config.augment, rng) for x in reals_u8]
        train_step(
            generator=g_run,
            critic=d,
            critic_module=d,
            opt_g=opt_g,
            opt_d=opt_d,
            reals=reals,
            make_input=lambda k: training_input(
                "none", batch, config.model.input_dim, generator=rng, device=device
            ),
            config=config.wgan,
            rng=rng,
            autocast=autocast,
        )
        ema.update(g, counter[0])
        counter[0] += 1

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--preset", choices=list(GAN_PRESETS), help="network sizes (default: paper on CUDA, tiny on CPU)"
    )
    parser.add_argument("--image-size", type=int, choices=(64, 128, 256))
    parser.add_argument("--batch-size", type=int, help="default 128 on CUDA, 16 on CPU")
    parser.add_argument("--n-critic", type=int, default=1)
    parser.add_argument("--steps", type=int, help="timed steps (default 50 on CUDA, 10 on CPU)")
    parser.add_argument(
        "--warmup", type=int, help="untimed steps first (default 10 on CUDA incl. compile, 2 on CPU)"
    )
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    preset = args.preset or ("paper" if cuda else "tiny")
    overrides = {"wgan.n_critic": args.n_critic}
    if args.image_size:
        overrides["model.image_size"] = args.image_size
    config = build_config(GANTrainConfig(), GAN_PRESETS, preset, overrides)
    batch = args.batch_size or (128 if cuda else 16)
    steps = args.steps or (50 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    compile_g = args.compile == "on" or (args.compile == "auto" and cuda)

    # FLOPs of one image's step, counted on an eager step of batch 2.
    g, d, _, opt_g, opt_d, ema = build(config, device, compile_g=False)
    probe = make_step(config, device, g, d, g, opt_g, opt_d, ema, 2)
    with CountFlops() as counter:
        probe()
    flops_per_image = counter.flops / 2 / config.wgan.n_critic
    del g, d, opt_g, opt_d, ema, probe

    g, d, g_run, opt_g, opt_d, ema = build(config, device, compile_g=compile_g)
    step = make_step(config, device, g, d, g_run, opt_g, opt_d, ema, batch)
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    images = steps * batch * config.wgan.n_critic
    rate = images / elapsed
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    mode = (
        "bf16 autocast, channels_last, fused Adam" + (", compiled G" if compile_g else "") if cuda else "fp32"
    )
    print(f"train-gan step on {name} ({mode})")
    print(
        f"  preset {preset}: {config.model.image_size} px, input {config.model.input_dim}, "
        f"G {count_parameters(g) / 1e6:.2f} M params, D {count_parameters(d) / 1e6:.2f} M params"
    )
    print(f"  batch {batch}, n_critic {config.wgan.n_critic}, {steps} timed steps after {warmup} warm-up")
    print(
        f"  {rate:,.1f} images/s   ({elapsed / steps * 1e3:.1f} ms/step, "
        f"{flops_per_image / 1e9:.2f} GFLOP/image, {rate * flops_per_image / 1e9:,.1f} GFLOP/s)"
    )
    if cuda and preset == "paper" and config.model.image_size == 256:
        print(f"  target ≥ 2,000 images/s on one H100: {'met' if rate >= 2000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
