"""Sampling from a run folder: per-tile seeds, batch independence, RNA-GAN helpers, `rnagan generate`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from training.cli.rnagan import main
from training.inference.generate import generate, load_generator
from training.loops.gan_config import GANTrainConfig
from training.networks.gan import GANConfig, Generator, init_weights
from training.utils.checkpoints import CheckpointError
from training.utils.ema import recalibrate_batchnorm
from training.utils.runs import save_config, save_weights

GENES = [f"ENSG{i:011d}.1" for i in range(10)]
LATENT = 6


def make_run(folder, conditioning="none", vae_run=None, expression_dir=None, input_dim=LATENT):
    """A run folder as train-gan leaves it (config.json + generator_ema.safetensors), untrained weights."""
    model = GANConfig(
        input_dim=input_dim, image_size=64, g_width=4, g_max_width=32, d_width=4, d_max_width=32
    )
    config = GANTrainConfig(
        tiles="tiles",
        tissue="Lung",
        conditioning=conditioning,
        vae_run=vae_run,
        expression_dir=expression_dir,
        model=model,
    )
    torch.manual_seed(0)
    generator = Generator(model)
    init_weights(generator)
    # Running statistics as training would leave them, so tiles vary visibly with their input.
    generator = recalibrate_batchnorm(generator, [torch.randn(16, input_dim) for _ in range(2)])
    folder.mkdir(parents=True)
    save_config(folder / "config.json", config)
    save_weights(folder / "generator_ema.safetensors", generator.state_dict())
    return folder


@pytest.fixture
def gan_run(tmp_path):
    return make_run(tmp_path / "gan")


def write_vae_run(folder):
    """A VAE run folder written through the VAE's own classes (untrained weights serve here)."""
    from training.networks.vae import BetaVAE, VAEConfig

    folder.mkdir()
    torch.manual_seed(0)
    model = BetaVAE(VAEConfig(n_genes=len(GENES), hidden=(8,), latent_dim=LATENT))
    save_weights(folder / "vae.safetensors", model.state_dict())
    (folder / "config.json").write_text(
        json.dumps({"model": {"n_genes": len(GENES), "hidden": [8], "latent_dim": LATENT}})
    )
    (folder / "genes.txt").write_text("\n".join(GENES) + "\n")
    np.savez(folder / "centroids.npz", Lung=np.zeros(LATENT, np.float32))
    return folder


def write_prepared(folder, samples: dict[str, list[str]]):
    """A prepared expression folder (docs/contracts.md) over GENES; `samples` holds splits.csv's columns."""
    from training.data.scaler import Scaler, save_scaler

    folder.mkdir()
    n = len(samples["sample_id"])
    np.save(
        folder / "matrix.npy",
        np.random.default_rng(0).standard_normal((n, len(GENES))).astype(np.float32) * 3,
    )
    pd.DataFrame(samples)[["sample_id", "slide_id", "tissue", "split"]].to_csv(
        folder / "splits.csv", index=False
    )
    (folder / "genes.txt").write_text("\n".join(GENES) + "\n")
    ones = np.ones(len(GENES))
    save_scaler(folder / "scaler.npz", Scaler(tuple(GENES), np.zeros(len(GENES)), ones, ones.astype(bool)))
    return folder


@pytest.fixture
def rna_run(tmp_path):
    vae = write_vae_run(tmp_path / "vae")
    prepared = write_prepared(
        tmp_path / "prepared",
        {
            "sample_id": ["L-1", "L-2", "L-3", "B-1"],
            "slide_id": ["l1", "l2", "l3", "b1"],
            "tissue": ["Lung", "Lung", "Lung", "Brain"],
            "split": ["train", "train", "val", "train"],
        },
    )
    return make_run(tmp_path / "rna", "rna", str(vae), str(prepared))


def test_generate_returns_uint8_nhwc_tiles(gan_run):
    tiles = generate(gan_run, 3, device="cpu")
    assert tiles.shape == (3, 64, 64, 3) and tiles.dtype == np.uint8
    assert tiles.std() > 0


def test_tiles_do_not_depend_on_the_batch_they_are_drawn_in(gan_run):
    gen = load_generator(gan_run, device="cpu")
    seeds = [4, 9, 1, 7, 3]
    reference = generate(gen, 5, seeds=seeds, batch_size=5)
    for batch_size in (1, 2, 3):
        np.testing.assert_array_equal(generate(gen, 5, seeds=seeds, batch_size=batch_size), reference)
    np.testing.assert_array_equal(generate(gen, 1, seeds=[1]), reference[2:3])
    np.testing.assert_array_equal(generate(gen, 3, seed=7), generate(gen, 3, seeds=[7, 8, 9]))
    assert not np.array_equal(reference[0], reference[1])


def test_loaded_generator_describes_its_run(gan_run, rna_run):
    gan = load_generator(gan_run, device="cpu")
    assert (gan.kind, gan.tissue, gan.image_size, gan.vae_run, gan.expression_dir) == (
        "gan",
        "Lung",
        64,
        None,
        None,
    )
    assert not gan.model.training
    rna = load_generator(rna_run, device="cpu")
    assert rna.kind == "rnagan" and rna.vae_run.name == "vae" and rna.expression_dir.name == "prepared"


def test_rna_gan_tiles_follow_the_expression(rna_run):
    gen = load_generator(rna_run, device="cpu")
    first, second = gen.expression_for_sample("L-1"), gen.expression_for_sample("L-2")
    assert first.shape == (len(GENES),)
    a = generate(gen, 2, first, seed=5)
    b = generate(gen, 2, second, seed=5)
    assert not np.array_equal(a, b)  # same seeds, other sample
    both = generate(gen, 2, np.stack([first, second]), seeds=[5, 5])
    np.testing.assert_array_equal(both[0], a[0])
    np.testing.assert_array_equal(both[1], b[0])
    np.testing.assert_array_equal(generate(gen, 1, latents=gen.encode(first)[0], seed=5), a[:1])


def test_rna_gan_helpers(rna_run):
    gen = load_generator(rna_run, device="cpu")
    ids = gen.random_sample_ids(5, seed=1)
    assert len(ids) == 5 and set(ids) <= {"L-1", "L-2", "L-3"}  # the run's tissue only
    assert ids == gen.random_sample_ids(5, seed=1)
    assert gen.random_sample_ids(2, seed=0, split="val") == ["L-3", "L-3"]
    synthetic = gen.vae_sample_expression("Lung", 3, seed=0)
    assert synthetic.shape == (3, len(GENES))
    assert generate(gen, 3, synthetic).shape == (3, 64, 64, 3)


def test_generate_checks_what_each_arm_takes(gan_run, rna_run):
    with pytest.raises(ValueError, match="needs an expression profile"):
        generate(rna_run, 1, device="cpu")
    with pytest.raises(ValueError, match="takes no expression"):
        generate(gan_run, 1, np.zeros(len(GENES)), device="cpu")
    with pytest.raises(ValueError, match="got 2 seeds for 3 tiles"):
        generate(gan_run, 3, seeds=[1, 2], device="cpu")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    run = make_run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["model"]["g_width"] = 8
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="checkpoint/config mismatch: .*in the file.*by the config"):
        load_generator(run, device="cpu")


def test_generate_command_writes_pngs_and_a_manifest(gan_run, rna_run, tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--run",
                str(gan_run),
                "--n",
                "3",
                "--seed",
                "10",
                "--out",
                str(tmp_path / "g"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    with open(tmp_path / "g/manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["seed"], r["sample"]) for r in rows] == [
        ("tile-00000.png", "10", ""),
        ("tile-00001.png", "11", ""),
        ("tile-00002.png", "12", ""),
    ]
    png = np.asarray(Image.open(tmp_path / "g/tile-00001.png"))
    np.testing.assert_array_equal(png, generate(gan_run, 1, seed=11, device="cpu")[0])

    assert (
        main(
            [
                "generate",
                "--run",
                str(rna_run),
                "--n",
                "2",
                "--sample",
                "L-2",
                "--out",
                str(tmp_path / "r"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    with open(tmp_path / "r/manifest.csv", newline="") as handle:
        assert [r["sample"] for r in csv.DictReader(handle)] == ["L-2", "L-2"]
    assert (
        main(
            [
                "generate",
                "--run",
                str(rna_run),
                "--n",
                "2",
                "--expression-file",
                str(rna_run.parent / "prepared"),
                "--row",
                "1",
                "--out",
                str(tmp_path / "f"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "f/tile-00000.png")),
        np.asarray(Image.open(tmp_path / "r/tile-00000.png")),
    )
    assert main(["generate", "--run", str(rna_run), "--n", "2", "--out", str(tmp_path / "x")]) == 2
    assert "needs one of --sample" in capsys.readouterr().err
    assert (
        main(["generate", "--run", str(gan_run), "--n", "1", "--sample", "L-1", "--out", str(tmp_path / "y")])
        == 2
    )
    assert "is a gan run" in capsys.readouterr().err
