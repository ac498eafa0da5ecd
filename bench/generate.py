"""Generation throughput: tiles/s and GFLOP/s of the generator, before any image encoding.

Two figures: the generator forward alone on device-resident inputs, and `training.inference.generate.generate`
end to end (each tile's seeded CPU noise, the forward, uint8 NHWC back on the host). On CUDA: bf16
autocast, channels_last, torch.compile; default paper-sized generator at 256 px with random weights
(target on one H100: ≥ 40,000 tiles/s). On CPU the default is the small preset at batch 16. FLOPs per
tile come from training.networks.gan.generator_flops (equal to torch.utils.flop_counter's count).

    .venv/bin/python bench/generate.py
    .venv/bin/python bench/generate.py --run runs/rnagan-lung --n 4096 --batch-size 512
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.cli.gan import GAN_PRESETS  # noqa: E402
from training.cli.presets import build_config  # noqa: E402
from training.inference.generate import generate, load_generator
from training.loops.gan_config import GANTrainConfig
from training.networks.gan import Generator, UpConv, count_parameters, generator_flops, init_weights  # noqa: E402
from training.utils.images import to_uint8_nhwc
from training.utils.runs import save_config, save_weights  # noqa: E402


def random_run(folder: Path, preset: str) -> Path:
    """A GAN run folder with random weights of the preset's sizes (what train-gan would leave)."""
    config = build_config(GANTrainConfig(tissue="bench"), GAN_PRESETS, preset, {})
    torch.manual_seed(0)
    generator = Generator(config.model)
    init_weights(generator)
    save_config(folder / "config.json", config)
    save_weights(folder / "generator_ema.safetensors", generator.state_dict())
    return folder


def timed(fn, repeats: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a GAN run folder (default: random weights of --preset)")
    parser.add_argument("--preset", choices=list(GAN_PRESETS), help="default paper on CUDA, small on CPU")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, help="default 512 on CUDA, 16 on CPU")
    parser.add_argument("--n", type=int, help="tiles per timed generate() call (default 8 batches)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="upsample by an explicit nearest resize + 3×3 convolution (same result, more FLOPs)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    wants_cuda = args.device in (None, "auto") or str(args.device).startswith("cuda")
    cuda_visible = torch.cuda.is_available() and wants_cuda
    preset = args.preset or ("paper" if cuda_visible else "small")
    compile_g = args.compile == "on" or (args.compile == "auto" and cuda_visible)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else random_run(Path(tmp), preset)
        gen = load_generator(run, device=args.device, compile=compile_g)
    device, cuda = gen.device, gen.device.type == "cuda"
    if args.no_fold:
        for module in gen.model.modules():
            if isinstance(module, UpConv):
                module.folded = False
    if cuda:
        torch.backends.cudnn.benchmark = True
    if gen.kind == "rnagan":
        raise SystemExit(
            "bench/generate.py times GAN runs (an RNA-GAN forward costs the same); pass a GAN run"
        )
    batch = args.batch_size or (512 if cuda else 16)
    n = args.n or 8 * batch
    flops = generator_flops(gen.config if not args.no_fold else replace(gen.config, upsample="bilinear"))

    z = torch.randn(batch, gen.input_dim, device=device)

    @torch.no_grad()
    def forward():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            return to_uint8_nhwc(gen.model(z))

    for _ in range(3):  # warm-up (and compilation)
        forward()
    generate(gen, batch, seed=0, batch_size=batch)
    reps = max(args.repeats * 4, 8) if cuda else args.repeats
    model_rate = reps * batch / timed(forward, reps, device)
    end_to_end = (
        args.repeats * n / timed(lambda: generate(gen, n, seed=0, batch_size=batch), args.repeats, device)
    )

    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    mode = "bf16, channels_last" + (", compiled" if compile_g else "") if cuda else "fp32"
    print(f"generate on {name} ({mode})")
    source = run if args.run else f"random weights, preset {preset}"
    params = count_parameters(gen.model) / 1e6
    print(f"  generator: {gen.image_size} px from {gen.input_dim}-d input, {params:.1f} M params,")
    print(f"    {flops / 1e9:.2f} GFLOP/tile ({source})")
    print(
        f"  forward only, batch {batch}: {model_rate:,.0f} tiles/s ({model_rate * flops / 1e9:,.0f} GFLOP/s)"
    )
    print(f"  generate() incl. seeded noise and uint8 to host, n {n}: {end_to_end:,.0f} tiles/s")
    if cuda and gen.image_size == 256 and gen.input_dim == 2048:
        print(f"  target ≥ 40,000 tiles/s on one H100: {'met' if end_to_end >= 40000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
