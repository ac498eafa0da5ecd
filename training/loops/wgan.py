"""WGAN-GP: the critic and generator losses, the per-sample gradient penalty, and one training step.

Critic loss: E[D(fake)] − E[D(real)] + λ · E[(‖∇D(x̂)‖₂ − 1)²], with x̂ = α·real + (1 − α)·fake and
one α ~ U(0, 1) per sample, and the gradient norm taken per sample (the original drew one α per batch
and took the norm of the whole batch's gradient). The Wasserstein terms and the penalty go through one
backward. Generator loss: −E[D(fake)]. The same function serves every conditioning arm: no weight
clipping anywhere (the original clipped critic weights in the GAN arm only).

`train_step` runs n_critic critic updates and one generator update. The generator's last forward (the
only one that needs a graph) feeds both the last critic update (detached) and the generator update.
Critic and penalty run eagerly: torch.compile cannot trace the penalty's double backward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WGANConfig:
    gp_weight: float = 10.0
    n_critic: int = 1
    aux_weight: float = 0.0  # conditioned critic with an auxiliary head: weight of the latent regression
    diversity_weight: float = 0.0  # mode-seeking term of the generator (Mao et al. 2019); 0: off

    def __post_init__(self) -> None:
        if self.gp_weight < 0 or self.aux_weight < 0 or self.diversity_weight < 0:
            raise ValueError(f"gp_weight, aux_weight and diversity_weight must be ≥ 0, got {self.gp_weight}, "
                             f"{self.aux_weight}, {self.diversity_weight}")
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be ≥ 1, got {self.n_critic}")


@dataclass
class CriticLoss:
    total: torch.Tensor
    wasserstein: torch.Tensor  # E[D(real)] − E[D(fake)], the critic's distance estimate
    penalty: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    alpha: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    cond: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over samples of (‖∇ₓD(x̂ᵢ)‖₂ − 1)², and the per-sample norms.

    `alpha` (N,) fixes the mixing coefficients (tests); otherwise each sample draws its own.
    The graph is kept (create_graph) so the penalty trains the critic.
    """
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, generator=generator, device=real.device)
    alpha = alpha.to(real.device, torch.float32).view(n, *([1] * (real.dim() - 1)))
    mixed = (alpha * real.float() + (1 - alpha) * fake.detach().float()).requires_grad_(True)
    # A conditioned critic scores x̂ᵢ under the shared condition of real i and fake i (fake i was drawn
    # from real i's latent); the gradient is taken with respect to the image only.
    scores = critic(mixed) if cond is None else critic(mixed, cond)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    norms = grad.float().flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean(), norms


def critic_loss(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_weight: float,
    generator: torch.Generator | None = None,
    alpha: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    aux_weight: float = 0.0,
) -> CriticLoss:
    fake = fake.detach()
    # One forward for real and fake: the critic has no batch statistics, so stacking changes nothing.
    both = torch.cat([real.to(fake.dtype), fake])
    aux = None
    if cond is None:
        scores = critic(both).float()
    else:
        scores, aux = critic(both, torch.cat([cond, cond]), with_aux=True)
        scores = scores.float()
    d_real, d_fake = scores[: real.shape[0]].mean(), scores[real.shape[0] :].mean()
    penalty, _ = gradient_penalty(critic, real, fake, alpha=alpha, generator=generator, cond=cond)
    total = d_fake - d_real + gp_weight * penalty
    if aux is not None and aux_weight > 0:
        # The auxiliary head learns the latent from real tiles only: fakes would teach it their mistakes.
        total = total + aux_weight * F.mse_loss(aux[: real.shape[0]].float(), cond.float())
    return CriticLoss(total, (d_real - d_fake).detach(), penalty.detach(), d_real.detach(), d_fake.detach())


def generator_loss(critic: nn.Module, fake: torch.Tensor, cond: torch.Tensor | None = None,
                   aux_weight: float = 0.0) -> torch.Tensor:
    if cond is None:
        return -critic(fake).float().mean()
    scores, aux = critic(fake, cond, with_aux=True)
    loss = -scores.float().mean()
    if aux is not None and aux_weight > 0:
        loss = loss + aux_weight * F.mse_loss(aux.float(), cond.float())
    return loss


def mode_seeking_loss(images: torch.Tensor, inputs: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mao et al. (2019): 1 / (mean |G(a) − G(b)| / mean |a − b| + eps) over the batch's two halves paired.

    Low when two different inputs give different tiles; it grows as the generator ignores its input,
    which the projection critic alone let happen (every tile of a run nearly one image, issue #13)."""
    half = images.shape[0] // 2
    if half == 0:
        return images.new_zeros(())
    image_gap = (images[:half] - images[half:2 * half]).abs().float().mean(dim=(1, 2, 3))
    input_gap = (inputs[:half] - inputs[half:2 * half]).abs().float().mean(dim=1)
    return (1.0 / (image_gap / (input_gap + eps) + eps)).mean()


@dataclass
class StepLosses:
    """Detached scalars on the training device (read them with .item() only when logging)."""

    d_loss: torch.Tensor
    wasserstein: torch.Tensor
    penalty: torch.Tensor
    g_loss: torch.Tensor

    FIELDS = ("d_loss", "wasserstein", "penalty", "g_loss")

    def as_tensor(self) -> torch.Tensor:
        return torch.stack([self.d_loss, self.wasserstein, self.penalty, self.g_loss])


def train_step(
    *,
    generator: nn.Module,
    critic: nn.Module,
    critic_module: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    reals: Sequence[torch.Tensor],
    make_input: Callable[[int], torch.Tensor],
    config: WGANConfig,
    rng: torch.Generator,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    make_cond: Callable[[int], torch.Tensor | None] | None = None,
    augment_fake: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> StepLosses:
    """n_critic = len(reals) critic updates, then one generator update.

    `generator`/`critic` may be compiled or DistributedDataParallel wrappers; `critic_module` is the
    bare critic, used for the generator's loss so that no critic gradients (or DDP reductions) happen
    there. `make_input(k)` builds the generator input for critic iteration k (its batch's expression rows);
    `make_cond(k)` the conditions a conditioned critic sees with them (the batch's latents). `augment_fake`
    transforms generated batches the way the real ones were (differentiably, DiffAugment-style), so the
    critic never learns augmentation as a tell and the generator is never taught to draw it.
    """
    if len(reals) != config.n_critic:
        raise ValueError(f"train_step got {len(reals)} real batches for n_critic = {config.n_critic}")
    totals = []
    fake = cond = drawn = drawn_from = None
    for k, real in enumerate(reals):
        last = k == len(reals) - 1
        z = make_input(k)
        cond = make_cond(k) if make_cond is not None else None
        with autocast():
            if last:
                fake = generator(z)
                drawn, drawn_from = fake, z  # before augmentation: the diversity term measures the generator
            else:
                with torch.no_grad():
                    fake = generator(z)
            if augment_fake is not None:
                fake = augment_fake(fake)
            loss = critic_loss(critic, real, fake, gp_weight=config.gp_weight, generator=rng, cond=cond,
                               aux_weight=config.aux_weight)
        opt_d.zero_grad(set_to_none=True)
        loss.total.backward()
        opt_d.step()
        totals.append(loss)

    critic_module.requires_grad_(False)
    try:
        with autocast():
            g_loss = generator_loss(critic_module, fake, cond, config.aux_weight)
            if config.diversity_weight > 0:
                g_loss = g_loss + config.diversity_weight * mode_seeking_loss(drawn, drawn_from)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    finally:
        critic_module.requires_grad_(True)

    def mean(name: str) -> torch.Tensor:
        return torch.stack([getattr(t, name).detach().float() for t in totals]).mean()

    return StepLosses(mean("total"), mean("wasserstein"), mean("penalty"), g_loss.detach())
