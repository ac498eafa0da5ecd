"""Presets: named starting configs that single command-line options override, with names checked."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from training.cli.presets import (
    VAE_LATENT_DIM,
    VAE_PRESETS,
    Option,
    add_preset_options,
    apply_overrides,
    build_config,
    overrides_from_args,
)
from training.cli.rnagan import main
from training.loops.train_vae import TrainVAEConfig
from training.networks.vae import VAEConfig
from training.utils.runs import ConfigError


def dry_run(capsys, *options: str) -> dict:
    assert main(["train-vae", "--data", "prepared", "--out", "run", "--dry-run", *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_paper_preset_is_the_typed_default():
    paper = build_config(TrainVAEConfig(data=Path("d")), VAE_PRESETS, "paper")
    assert paper == TrainVAEConfig(data=Path("d"))
    assert paper.model == VAEConfig(n_genes=19198, hidden=(6000, 4096), latent_dim=2048)
    assert (paper.beta, paper.lr, paper.epochs, paper.batch_size) == (0.005, 5e-5, 250, 128)


def test_every_preset_builds_and_names_only_real_fields():
    for name in VAE_PRESETS:
        config = build_config(TrainVAEConfig(data=Path("d")), VAE_PRESETS, name)
        config.validate()
        assert config.model.latent_dim == VAE_LATENT_DIM[name]
    assert VAE_LATENT_DIM == {"paper": 2048, "small": 512, "tiny": 32}


def test_single_options_override_the_preset(capsys):
    config = dry_run(capsys, "--preset", "tiny", "--epochs", "3")
    assert config["epochs"] == 3 and config["preset"] == "tiny"
    assert config["model"]["hidden"] == [128, 64] and config["model"]["latent_dim"] == 32
    assert config["batch_size"] == VAE_PRESETS["tiny"]["batch_size"]

    config = dry_run(capsys, "--preset", "small", "--hidden", "256,128", "--latent-dim", "16", "--beta", "0.01",
                     "--set", "model.negative_slope=0.1", "--set", "min_delta=1e-3")
    assert config["model"] == {**config["model"], "hidden": [256, 128], "latent_dim": 16, "negative_slope": 0.1}
    assert config["beta"] == 0.01 and config["min_delta"] == 0.001 and config["epochs"] == 100


def test_unknown_option_names_are_rejected(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train-vae", "--data", "d", "--out", "r", "--preset", "tiny", "--latnt-dim", "3"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --latnt-dim" in capsys.readouterr().err

    assert main(["train-vae", "--data", "d", "--out", "r", "--set", "model.latnt_dim=3", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'model.latnt_dim'" in err and "model.latent_dim" in err

    assert main(["train-vae", "--data", "d", "--out", "r", "--set", "epochs=many", "--dry-run"]) == 2
    assert "TrainVAEConfig.epochs: expected int, got 'many'" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["train-vae", "--data", "d", "--out", "r", "--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_invalid_values_are_refused(capsys):
    assert main(["train-vae", "--data", "d", "--out", "r", "--batch-size", "1", "--dry-run"]) == 2
    assert "batch_size must be >= 2" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="input_dropout"):
        apply_overrides(TrainVAEConfig(data=Path("d")), {"model.input_dropout": 1.5})
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build_config(TrainVAEConfig(data=Path("d")), VAE_PRESETS, "huge")


@dataclass
class Net:
    width: int = 64


@dataclass
class OtherTrainer:
    """Any trainer's config works the same way (the GAN trainer reuses this mechanism)."""

    net: Net = field(default_factory=Net)
    lr: float = 1e-3
    name: str = "x"


def test_the_mechanism_is_generic():
    presets = {"big": {"net.width": 512, "lr": 1e-4}, "tiny": {"net.width": 8}}
    options = (Option("net.width", "--width", int, "channels"), Option("lr", "--lr", float, "learning rate"))
    parser = argparse.ArgumentParser()
    add_preset_options(parser, presets, options, default="big")
    args = parser.parse_args(["--preset", "tiny", "--lr", "0.5", "--set", "name=run1"])
    config = build_config(OtherTrainer(), presets, args.preset, overrides_from_args(args, options))
    assert config == OtherTrainer(net=Net(width=8), lr=0.5, name="run1")
    assert "(presets: big 512, tiny 8)" in " ".join(parser.format_help().split())
    with pytest.raises(ConfigError, match="unknown option 'net.depth'"):
        build_config(OtherTrainer(), {"bad": {"net.depth": 3}}, "bad")
