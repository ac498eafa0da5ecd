"""WGAN-GP: the per-sample gradient penalty against hand computations, the losses, one training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.loops.wgan import WGANConfig, critic_loss, generator_loss, gradient_penalty, train_step
from training.networks.gan import Critic, GANConfig, Generator


class LinearCritic(nn.Module):
    """D(x) = w·x + b: its input gradient is w for every sample."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x):
        return (x.flatten(1) * self.weight.flatten()).sum(1) + 1.0


class QuadraticCritic(nn.Module):
    """D(x) = c/2 · ‖x‖²: its input gradient is c·x, so the norm depends on each sample's mixing point."""

    def __init__(self, c: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return 0.5 * self.c * x.flatten(1).square().sum(1)


def test_penalty_of_a_linear_critic_is_known_in_closed_form():
    weight = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # ‖w‖ = 5
    critic = LinearCritic(weight)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    penalty, norms = gradient_penalty(critic, real, fake, alpha=torch.rand(4))
    torch.testing.assert_close(norms, torch.full((4,), 5.0))
    torch.testing.assert_close(penalty, torch.tensor(16.0))


def test_penalty_uses_one_mixing_coefficient_and_one_norm_per_sample():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]).view(3, 1, 1, 2)
    fake = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]]).view(3, 1, 1, 2)
    alpha = torch.tensor([0.25, 0.5, 1.0])
    c = 2.0
    penalty, norms = gradient_penalty(QuadraticCritic(c), real, fake, alpha=alpha)
    # By hand: x̂ᵢ = αᵢ rᵢ + (1 − αᵢ) fᵢ; ∇D(x̂ᵢ) = c x̂ᵢ.
    mixed = [(0.25, 0.75), (1.0, 1.0), (3.0, 4.0)]
    expected_norms = torch.tensor([c * (a**2 + b**2) ** 0.5 for a, b in mixed])
    torch.testing.assert_close(norms, expected_norms)
    torch.testing.assert_close(penalty, ((expected_norms - 1) ** 2).mean())
    # The batch-level form (one norm over the whole batch's gradient) is a different number.
    assert not torch.isclose(penalty, (expected_norms.square().sum().sqrt() - 1) ** 2)


def test_penalty_draws_its_own_coefficient_for_each_sample():
    real, fake = torch.ones(6, 1, 1, 2), torch.zeros(6, 1, 1, 2)
    _, norms = gradient_penalty(QuadraticCritic(1.0), real, fake, generator=torch.Generator().manual_seed(3))
    alpha = torch.rand(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(norms, alpha * 2**0.5)  # ‖α·(1, 1)‖
    assert len(set(norms.tolist())) == 6


def test_critic_loss_is_wasserstein_plus_weighted_penalty_in_one_graph():
    critic = QuadraticCritic(1.5)
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    alpha = torch.rand(5)
    loss = critic_loss(critic, real, fake, gp_weight=10.0, alpha=alpha)
    penalty, _ = gradient_penalty(critic, real, fake, alpha=alpha)
    d_real, d_fake = critic(real).mean(), critic(fake).mean()
    torch.testing.assert_close(loss.total, d_fake - d_real + 10.0 * penalty)
    torch.testing.assert_close(loss.wasserstein, d_real - d_fake)
    loss.total.backward()  # one backward reaches the critic through the loss and the penalty
    assert critic.c.grad is not None and torch.isfinite(critic.c.grad)


def test_generator_loss_is_minus_the_mean_score():
    critic = LinearCritic(torch.ones(1, 2, 2))
    fake = torch.randn(3, 1, 2, 2)
    torch.testing.assert_close(generator_loss(critic, fake), -critic(fake).mean())


def _tiny_models():
    config = GANConfig(input_dim=8, image_size=64, g_width=2, g_max_width=16, d_width=2, d_max_width=16)
    torch.manual_seed(0)
    generator, critic = Generator(config), Critic(config)
    return config, generator, critic


@pytest.mark.parametrize("n_critic", [1, 2])
def test_one_training_step_gives_finite_losses_and_updates_both_networks(n_critic):
    config, generator, critic = _tiny_models()
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=4e-3, betas=(0.5, 0.999))
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in critic.parameters()]
    reals = [torch.rand(4, 3, 64, 64) * 2 - 1 for _ in range(n_critic)]
    calls = []

    def make_input(k):
        calls.append(k)
        return torch.randn(4, config.input_dim)

    losses = train_step(
        generator=generator,
        critic=critic,
        critic_module=critic,
        opt_g=opt_g,
        opt_d=opt_d,
        reals=reals,
        make_input=make_input,
        config=WGANConfig(n_critic=n_critic),
        rng=torch.Generator().manual_seed(0),
    )
    assert calls == list(range(n_critic))  # one generator input per critic update, the last one reused
    for value in (losses.d_loss, losses.wasserstein, losses.penalty, losses.g_loss):
        assert value.dim() == 0 and torch.isfinite(value)
    assert all(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, critic.parameters(), strict=True))
    assert all(p.requires_grad for p in critic.parameters())


def test_generator_update_leaves_the_critic_alone():
    config, generator, critic = _tiny_models()
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
    opt_d = torch.optim.SGD(critic.parameters(), lr=0.0)  # the critic step changes nothing
    before = [p.detach().clone() for p in critic.parameters()]
    train_step(
        generator=generator,
        critic=critic,
        critic_module=critic,
        opt_g=opt_g,
        opt_d=opt_d,
        reals=[torch.zeros(2, 3, 64, 64)],
        make_input=lambda k: torch.randn(2, config.input_dim),
        config=WGANConfig(),
        rng=torch.Generator().manual_seed(0),
    )
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters(), strict=True))


def test_step_refuses_a_wrong_number_of_real_batches():
    config, generator, critic = _tiny_models()
    opt = torch.optim.Adam(generator.parameters())
    with pytest.raises(ValueError, match="n_critic = 2"):
        train_step(
            generator=generator,
            critic=critic,
            critic_module=critic,
            opt_g=opt,
            opt_d=opt,
            reals=[torch.zeros(2, 3, 64, 64)],
            make_input=lambda k: torch.randn(2, 8),
            config=WGANConfig(n_critic=2),
            rng=torch.Generator(),
        )
