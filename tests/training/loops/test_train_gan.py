"""The WGAN-GP training loop: run folder, exact resume, one recipe for every arm, augmentation, EMA."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset

from training.cli.gan import GAN_PRESETS
from training.cli.presets import build_config
from training.cli.rnagan import main
from training.inference.generate import generate, load_generator
from training.loops.augment import AugmentConfig, augment
from training.loops.conditioning import ConditioningData, LatentTable
from training.loops.gan_config import GANTrainConfig, Runtime
from training.loops.train_gan import train_gan
from training.networks.gan import GANConfig, Generator
from training.utils.checkpoints import CheckpointError
from training.utils.ema import EMA, recalibrate_batchnorm


class MemoryTiles(Dataset):
    """Items shaped like training.data.tile_store.TileDataset's, from random pixels; slide k has expression row k."""

    def __init__(self, n=12, size=64, slides=3):
        self.images = torch.randint(
            0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
        )
        self.slides = slides

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        slide = i % self.slides
        return {
            "image": self.images[i],
            "slide_id": f"S{slide}",
            "key": f"S{slide}/{i}_0",
            "expression_row": slide,
        }


def tiny_config(**overrides) -> GANTrainConfig:
    settings = {
        "conditioning": "rna",
        "batch_size": 4,
        "epochs": 2,
        "log_every": 1,
        "grid_rows": 2,
        "grid_columns": 2,
        "bn_batches": 2,
        "model.g_width": 4,
        "model.g_max_width": 32,
        "model.d_width": 4,
        "model.d_max_width": 32,
        "model.input_dim": 8,
        **overrides,
    }
    return build_config(GANTrainConfig(), GAN_PRESETS, "tiny", settings)


def conditioning(rows=3, dim=8):
    table = LatentTable(torch.randn(rows, dim, generator=torch.Generator().manual_seed(2)))
    return ConditioningData(
        table=table, grid_rows=[0, 1], grid_labels=["S0", "S1"], train_rows=list(range(rows))
    )


def train(config, out, max_steps=None, resume=False):
    return train_gan(
        config,
        out,
        Runtime(progress=False, max_steps=max_steps),
        resume=resume,
        dataset=MemoryTiles(),
        conditioning=conditioning(dim=config.model.input_dim),
    )


def test_a_run_writes_every_output_and_samples_from_its_folder(tmp_path):
    run = train(tiny_config(epochs=1), tmp_path / "run")
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {
        "config.json",
        "environment.json",
        "generator_ema.safetensors",
        "latents.safetensors",
        "losses.csv",
        "samples/epoch-0001.png",
        "checkpoints/latest.json",
    } <= names
    with open(run / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "wasserstein", "penalty", "g_loss"))
    saved = json.loads((run / "config.json").read_text())
    assert saved["conditioning"] == "rna" and saved["model"]["input_dim"] == 8
    tiles = generate(load_generator(run, device="cpu"), 3, latents=np.zeros(8, np.float32))
    assert tiles.shape == (3, 64, 64, 3) and tiles.dtype == np.uint8


def _state(run, step):
    return load_file(str(run / "checkpoints" / f"step-{step:08d}.safetensors"))


def test_resume_after_two_steps_equals_four_uninterrupted_steps(tmp_path):
    config = tiny_config(epochs=2)  # 12 tiles of batch 4: 3 steps an epoch, so the resume crosses an epoch
    train(config, tmp_path / "straight", max_steps=4)
    train(config, tmp_path / "resumed", max_steps=2)
    assert json.loads((tmp_path / "resumed/checkpoints/latest.json").read_text())["step"] == 2
    train(config, tmp_path / "resumed", max_steps=4, resume=True)
    straight, resumed = _state(tmp_path / "straight", 4), _state(tmp_path / "resumed", 4)
    assert straight.keys() == resumed.keys()
    assert any(k.startswith("opt_d.") for k in straight) and any(k.startswith("ema.") for k in straight)
    for key in straight:
        if not key.startswith("rng."):
            assert torch.equal(straight[key], resumed[key]), key
    with open(tmp_path / "resumed/losses.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4]


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    train(tiny_config(), tmp_path / "run", max_steps=1)
    with pytest.raises(
        CheckpointError, match=r"checkpoint/config mismatch: optim.lr_g is 0.00025 in the checkpoint but 0.002"
    ):
        train(tiny_config(**{"optim.lr_g": 2e-3}), tmp_path / "run", max_steps=2, resume=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(), tmp_path / "run", max_steps=2)


def test_a_checkpoint_written_before_a_field_existed_resumes_only_at_the_value_that_behaves_as_before(tmp_path):
    train(tiny_config(), tmp_path / "run", max_steps=1)
    meta_path = tmp_path / "run/checkpoints/step-00000001.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["wgan"]["diversity_weight"]  # as a checkpoint of the code before the term existed
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="wgan.diversity_weight is '<absent>' in the checkpoint but 1.0"):
        train(tiny_config(**{"wgan.diversity_weight": 1.0}), tmp_path / "run", max_steps=2, resume=True)
    train(tiny_config(), tmp_path / "run", max_steps=2, resume=True)
    assert json.loads((tmp_path / "run/checkpoints/latest.json").read_text())["step"] == 2


def test_rna_gan_without_its_latent_table_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="RNA-GAN .* needs the VAE latent table"):
        train_gan(
            tiny_config(),
            tmp_path / "run",
            Runtime(progress=False),
            dataset=MemoryTiles(),
            conditioning=ConditioningData(),
        )


def test_gan_and_noise_arms_train_with_the_same_loop(tmp_path):
    for arm in ("none", "noise"):
        run = train_gan(
            tiny_config(conditioning=arm, epochs=1),
            tmp_path / arm,
            Runtime(progress=False),
            dataset=MemoryTiles(),
        )
        assert load_generator(run, device="cpu").kind == {"none": "gan", "noise": "noise"}[arm]


def _train_argv(tmp_path) -> list[str]:
    """`train-gan` on an empty tile folder for lung: enough to parse and validate the options."""
    (tmp_path / "tiles").mkdir(exist_ok=True)
    return ["train-gan", "--tiles", str(tmp_path / "tiles"), "--tissue", "lung", "--out", str(tmp_path / "out")]


def _parse_train(tmp_path, *extra):
    from training.cli.gan import build_train_config
    from training.cli.rnagan import build_parser

    return build_train_config(build_parser().parse_args([*_train_argv(tmp_path), *extra]))


def test_gan_and_rna_gan_share_loss_optimiser_and_schedule(tmp_path):
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.json").write_text(json.dumps({"model": {"latent_dim": 48}}))
    (tmp_path / "prepared").mkdir()
    prepared = str(tmp_path / "prepared")
    rates = {}
    for preset in GAN_PRESETS:
        gan = _parse_train(tmp_path, "--conditioning", "none", "--expression", prepared, "--preset", preset)
        proj = _parse_train(tmp_path, "--conditioning", "rna-proj", "--vae", str(vae), "--expression", prepared,
                            "--preset", preset)
        assert (proj.model.input_dim, proj.model.noise_dim, proj.model.cond_dim) == (96, 48, 48)
        assert (gan.wgan, gan.optim, gan.augment) == (proj.wgan, proj.optim, proj.augment)
        rates[preset] = (gan.optim.lr_g, gan.optim.lr_d)
        rna = _parse_train(
            tmp_path,
            "--conditioning",
            "rna",
            "--vae",
            str(vae),
            "--expression",
            str(tmp_path / "prepared"),
            "--preset",
            preset,
        )
        assert rna.model.input_dim == 48  # the generator reads the VAE's latent
        assert (gan.wgan, gan.optim, gan.augment) == (rna.wgan, rna.optim, rna.augment)
        assert (gan.epochs, gan.batch_size, gan.tiles_per_slide, gan.seed) == (
            rna.epochs,
            rna.batch_size,
            rna.tiles_per_slide,
            rna.seed,
        )
    assert gan.wgan.gp_weight == 10.0 and gan.optim.betas == (0.5, 0.999)
    # The paper's rates at paper size; the tiny preset's own stable rates (same for every arm).
    assert rates["paper"] == (1e-3, 4e-3) and rates["tiny"] == (2.5e-4, 1e-3)
    assert not any(key.startswith("wgan.") for table in GAN_PRESETS.values() for key in table)
    overridden = _parse_train(
        tmp_path, "--conditioning", "none", "--expression", prepared, "--n-critic", "3", "--lr-d", "1e-4",
        "--epochs", "5"
    )
    assert (overridden.wgan.n_critic, overridden.optim.lr_d, overridden.epochs) == (3, 1e-4, 5)


def test_cli_explains_missing_or_misplaced_vae(tmp_path, capsys):
    base = _train_argv(tmp_path)
    assert main([*base, "--conditioning", "rna"]) == 2
    assert "needs a trained VAE (--vae RUN)" in capsys.readouterr().err
    assert main([*base, "--conditioning", "none", "--vae", str(tmp_path)]) == 2
    assert "--vae is only used by the RNA arms" in capsys.readouterr().err


def test_every_arm_needs_the_split_to_train_on_the_same_slides(tmp_path, capsys):
    base = _train_argv(tmp_path)
    assert main([*base, "--conditioning", "none"]) == 2
    assert "--split train needs --expression FOLDER" in capsys.readouterr().err
    assert _parse_train(tmp_path, "--conditioning", "none", "--split", "all").split == "all"


def test_augmentation_flips_and_jitters_each_sample_within_range():
    images = torch.randint(
        0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    identity = AugmentConfig(hflip=False, vflip=False, brightness=0, contrast=0, saturation=0, hue=0)
    plain = augment(images, identity, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, images.float() / 127.5 - 1)

    flips = augment(
        images,
        AugmentConfig(vflip=False, brightness=0, contrast=0, saturation=0, hue=0),
        torch.Generator().manual_seed(0),
    )
    flipped = [torch.allclose(flips[k], plain[k].flip(-1)) for k in range(16)]
    assert all(flipped[k] or torch.allclose(flips[k], plain[k]) for k in range(16))
    assert 0 < sum(flipped) < 16  # drawn per sample

    jittered = augment(images, AugmentConfig(), torch.Generator().manual_seed(0))
    assert jittered.shape == images.shape and jittered.dtype == torch.float32
    assert jittered.min() >= -1 and jittered.max() <= 1
    assert torch.equal(jittered, augment(images, AugmentConfig(), torch.Generator().manual_seed(0)))


def test_colour_jitter_keeps_grey_grey():
    grey = torch.full((8, 3, 4, 4), 0.5)
    out = augment(
        grey,
        AugmentConfig(hflip=False, vflip=False, brightness=0, contrast=0.3, saturation=0.5, hue=0.5),
        torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-5, rtol=0)


def test_ema_averages_weights_and_recalibration_leaves_the_model_alone():
    config = GANConfig(input_dim=4, image_size=64, g_width=2, g_max_width=8)
    model = Generator(config)
    ema = EMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, step=100)
    for averaged, live in zip(ema.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(averaged, live - 0.9)
    assert EMA(model, 0.999).decay_at(0) == pytest.approx(0.1)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    calibrated = recalibrate_batchnorm(ema.model, [torch.randn(4, 4) * 3 for _ in range(2)])
    assert all(torch.equal(before[k], v) for k, v in ema.model.state_dict().items())
    assert not torch.equal(calibrated.stem_norm.running_var, before["stem_norm.running_var"])
    assert not calibrated.training


def _tile_store(path, slides, *, tiles_per_slide=6, size=64):
    """A tile store written with the tile-slides writer: coloured JPEG tiles, one tissue."""
    import io

    from PIL import Image

    from training.data.tile_store import TileStoreWriter, dumps, tile_key

    rng = np.random.default_rng(0)
    with TileStoreWriter(path) as writer:
        for slide in slides:
            writer.begin_slide(slide, {"slide_id": slide, "tissue": "Lung", "count": 0})
            tiles = []
            for k in range(tiles_per_slide):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
                key = tile_key(slide, k * size, 0)
                tiles.append((key, buffer.getvalue(), dumps({"slide": slide, "x": k * size, "y": 0})))
            writer.put_tiles(tiles)
            writer.put_record(
                slide, {"slide_id": slide, "tissue": "Lung", "count": tiles_per_slide, "status": "complete"}
            )
    return path


def test_end_to_end_through_the_tile_store_the_prepared_folder_and_the_vae(tmp_path):
    """train-gan --conditioning rna on an LMDB tile store, then generate from a random sample."""
    from tests.training.inference.test_generate import LATENT, write_prepared, write_vae_run

    vae = write_vae_run(tmp_path / "vae")
    slides = ["GTEX-A-0001", "GTEX-B-0001", "GTEX-C-0001", "GTEX-D-0001"]
    prepared = write_prepared(
        tmp_path / "prepared",
        {
            "sample_id": [f"{s}-SM-1" for s in slides],
            "slide_id": slides,
            "tissue": ["Lung"] * 4,
            "split": ["train", "train", "train", "val"],
        },
    )
    # Slide D is held out (val) and slide E has no expression: neither may be trained on.
    tiles = _tile_store(
        tmp_path / "tiles", ["GTEX-A-0001", "GTEX-B-0001", "GTEX-C-0001", "GTEX-D-0001", "GTEX-E-0001"]
    )
    run = tmp_path / "run"
    argv = [
        *("train-gan", "--tiles", str(tiles), "--tissue", "lung", "--conditioning", "rna"),
        *("--vae", str(vae), "--expression", str(prepared), "--out", str(run)),
        *"--preset tiny --epochs 1 --batch-size 6 --no-progress".split(),
        *"--set grid_columns=2 --set bn_batches=1 --set log_every=1".split(),
    ]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["input_dim"] == LATENT and config["vae_run"] == str(vae.resolve())
    with open(run / "losses.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3]  # 18 training tiles / 6
    assert (run / "samples" / "epoch-0001.png").exists()
    assert main([*argv, "--resume"]) == 0  # nothing left to do: the run is complete

    out = tmp_path / "tiles-out"
    assert main(["generate", "--run", str(run), "--n", "3", "--random-sample", "--out", str(out)]) == 0
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(r["sample"].startswith("GTEX-") for r in rows)
