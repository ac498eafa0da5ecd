"""β-VAE speed: training epochs and inference (encode / decode / sample) on the paper's 19,198 genes.

Writes a synthetic prepared-expression folder (two tissues, z-scored) in a temporary folder, trains
with a preset for a few epochs through `training.loops.train_vae.train_vae` (no figure), and times the loaded
model's encode, decode and `sample`. On CUDA the trainer uses bf16 autocast and fused Adam.

    .venv/bin/python bench/train_vae.py                           # tiny preset, 300 samples, 10 epochs
    .venv/bin/python bench/train_vae.py --preset small --epochs 3
    .venv/bin/python bench/train_vae.py --preset paper --samples 1718 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.cli.presets import VAE_PRESETS, build_config  # noqa: E402
from training.data.scaler import fit_scaler, save_scaler  # noqa: E402
from training.loops.train_vae import TrainVAEConfig, train_vae  # noqa: E402

PAPER_GENES = 19_198


def write_prepared(folder: Path, n_samples: int, n_genes: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    genes = [f"ENSG{i:011d}.1" for i in range(n_genes)]
    half = n_samples // 2
    means = rng.normal(2.0, 1.0, (2, n_genes)).astype(np.float32)
    tissue = np.repeat([0, 1], [half, n_samples - half])
    values = means[tissue] + rng.normal(0, 0.5, (n_samples, n_genes)).astype(np.float32)
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n_samples) % 5]
    scaler = fit_scaler(values[split == "train"].T, genes=genes)
    folder.mkdir(parents=True)
    np.save(folder / "matrix.npy", ((values - scaler.mean) / scaler.sd).astype(np.float32))
    pd.DataFrame({
        "sample_id": [f"S{i:05d}" for i in range(n_samples)],
        "slide_id": [f"S{i:05d}" for i in range(n_samples)],
        "tissue": np.array(["Lung", "Brain - Cortex"])[tissue],
        "split": split,
    }).to_csv(folder / "splits.csv", index=False)
    (folder / "genes.txt").write_text("".join(f"{g}\n" for g in genes))
    save_scaler(folder / "scaler.npz", scaler)
    return folder


def timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(VAE_PRESETS), default="tiny")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--genes", type=int, default=PAPER_GENES)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, load average {load:.1f} "
          f"(timings on a shared machine are noisy)")
    with tempfile.TemporaryDirectory(prefix="bench-vae-") as tmp:
        data = write_prepared(Path(tmp) / "prepared", args.samples, args.genes)
        config = build_config(TrainVAEConfig(data=data), VAE_PRESETS, args.preset,
                              {"epochs": args.epochs, "patience": args.epochs, "embedding": "none",
                               "device": args.device})
        start = time.perf_counter()
        result = train_vae(config, Path(tmp) / "run", log=lambda line: None)
        total = time.perf_counter() - start
        epochs = [row["seconds"] for row in result.history]
        train_samples = int(0.6 * args.samples)
        steady = statistics.median(epochs[1:] or epochs)
        print(f"preset {args.preset}: {config.model.n_genes} genes → {config.model.hidden} → "
              f"{config.model.latent_dim}, {result.metrics['parameters'] / 1e6:.1f} M parameters, "
              f"device {result.metrics['device']}, batch {config.batch_size}")
        print(f"  training: first epoch {epochs[0]:.2f} s, median epoch {steady:.2f} s "
              f"({train_samples / steady:,.0f} train samples/s incl. validation), "
              f"{len(epochs)} epochs + outputs in {total:.1f} s")

        vae = result.vae
        x = np.load(data / "matrix.npy")[:1024]
        z = vae.encode(x)
        n = len(x)
        print(f"  encode {n / timed(lambda: vae.encode(x)):,.0f} samples/s, "
              f"decode {n / timed(lambda: vae.decode(z)):,.0f} samples/s, "
              f"sample {n / timed(lambda: vae.sample('Lung', n, seed=0)):,.0f} samples/s (batches of {n})")


if __name__ == "__main__":
    main()
