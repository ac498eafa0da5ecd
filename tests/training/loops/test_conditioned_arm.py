"""The conditioned arm (rna-proj): a critic that sees the latent, noise concatenated after it, the same
per-sample gradient penalty; divergence shows up in losses.csv."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch

from tests.training.loops.test_train_gan import conditioning, tiny_config, train
from training.inference.generate import generate, load_generator
from training.loops.loss_log import DivergenceMonitor
from training.loops.wgan import critic_loss, gradient_penalty, mode_seeking_loss
from training.networks.gan import Critic, GANConfig, init_weights


def projection_critic(aux: bool = False) -> Critic:
    torch.manual_seed(0)
    critic = Critic(GANConfig(input_dim=16, image_size=64, d_width=4, d_max_width=16, cond_dim=8, aux_head=aux))
    init_weights(critic)
    return critic


def test_the_projection_term_changes_the_score_when_only_the_latent_changes():
    critic = projection_critic()
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    c1, c2 = torch.zeros(1, 8), torch.ones(1, 8)
    s1, s2 = critic(image, c1), critic(image, c2)
    assert not torch.allclose(s1, s2)
    # Exactly the inner product of the embedded latent with the image's features.
    features = critic.features(image).flatten(1)
    expected = (critic.embed(c2 - c1) * features).sum(1)
    torch.testing.assert_close(s2 - s1, expected)


def test_the_penalty_stays_per_sample_under_a_condition():
    critic = projection_critic()
    real, fake = torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 3, 64, 64) * 2 - 1
    cond = torch.randn(4, 8)
    alpha = torch.rand(4)
    _, together = gradient_penalty(critic, real, fake, alpha=alpha, cond=cond)
    alone = [gradient_penalty(critic, real[i : i + 1], fake[i : i + 1], alpha=alpha[i : i + 1], cond=cond[i : i + 1])[1]
             for i in range(4)]
    torch.testing.assert_close(together, torch.cat(alone))


def test_the_auxiliary_head_adds_a_latent_regression_to_the_critic_loss():
    critic = projection_critic(aux=True)
    real, fake = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    cond, alpha = torch.randn(2, 8), torch.full((2,), 0.5)
    plain = critic_loss(critic, real, fake, gp_weight=10, alpha=alpha, cond=cond).total
    with_aux = critic_loss(critic, real, fake, gp_weight=10, alpha=alpha, cond=cond, aux_weight=1.0).total
    predicted = critic.aux(critic.features(real).flatten(1))
    torch.testing.assert_close(with_aux - plain, torch.nn.functional.mse_loss(predicted, cond))


def test_the_mode_seeking_term_is_high_for_a_generator_that_ignores_its_input_and_pushes_tiles_apart():
    inputs = torch.randn(8, 16)
    same = torch.zeros(8, 3, 8, 8, requires_grad=True)
    varied = torch.rand(8, 3, 8, 8) * 2 - 1
    assert mode_seeking_loss(same, inputs) > 100 * mode_seeking_loss(varied, inputs)
    # Its gradient on two identical halves moves them apart: a descent step makes them differ.
    nearly = (torch.zeros(8, 3, 8, 8) + torch.linspace(0, 1e-3, 8).view(8, 1, 1, 1)).requires_grad_(True)
    mode_seeking_loss(nearly, inputs).backward()
    stepped = nearly.detach() - 1e-3 * nearly.grad
    gap = lambda x: (x[:4] - x[4:]).abs().mean()  # noqa: E731
    assert gap(stepped) > gap(nearly.detach())


def test_an_rna_proj_run_trains_and_samples_from_the_latent_plus_concatenated_noise(tmp_path):
    config = tiny_config(**{"conditioning": "rna-proj", "model.input_dim": 16, "model.noise_dim": 8,
                            "model.cond_dim": 8, "model.aux_head": True, "wgan.aux_weight": 1.0})
    run = train_conditioned(config, tmp_path / "run")
    saved = json.loads((run / "config.json").read_text())
    assert saved["conditioning"] == "rna-proj" and saved["model"]["noise_dim"] == 8
    gen = load_generator(run, device="cpu")
    assert gen.kind == "rnagan" and gen.latent_dim == 8
    a = generate(gen, 2, latents=np.zeros(8, np.float32), seed=3)
    b = generate(gen, 2, latents=np.zeros(8, np.float32), seed=3)
    assert a.shape == (2, 64, 64, 3) and np.array_equal(a, b)
    with open(run / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all("alarm" in r for r in rows)


def train_conditioned(config, out):
    from tests.training.loops.test_train_gan import MemoryTiles
    from training.loops.gan_config import Runtime
    from training.loops.train_gan import train_gan

    return train_gan(config, out, Runtime(progress=False, max_steps=3), dataset=MemoryTiles(),
                     conditioning=conditioning(dim=config.model.cond_dim))


def test_the_monitor_flags_a_penalty_spike_and_not_a_steady_run():
    monitor = DivergenceMonitor()
    steady = [{"d_loss": -1.0 + 0.1 * i, "wasserstein": 1.0, "penalty": 0.2, "g_loss": 0.5} for i in range(20)]
    assert all(monitor.check(v) == [] for v in steady)
    assert monitor.check({"d_loss": -1.0, "wasserstein": 1.0, "penalty": 4e3, "g_loss": 0.5}) == ["penalty_spike"]
    assert "nonfinite" in monitor.check({"d_loss": float("nan"), "wasserstein": 1.0, "penalty": 0.2, "g_loss": 0.5})


def test_the_rna_arm_is_unchanged_by_the_conditioned_arm(tmp_path):
    # The paper's arm keeps its additive narrow noise and its image-only critic.
    run = train(tiny_config(epochs=1), tmp_path / "run")
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["cond_dim"] == 0 and saved["model"]["noise_dim"] == 0
