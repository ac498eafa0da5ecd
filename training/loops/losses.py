"""Training losses. Each returns its terms apart, so the loops can log and plot them separately.

β-VAE (this section): reconstruction + β · KL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------
# β-VAE
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VAELoss:
    """`total` is what is minimised; `recon` and `kl` are kept for logging (all scalar tensors)."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample: summed over latent dimensions, shape (batch,). Computed in fp32."""
    mu = mu.float()
    logvar = logvar.float()
    return 0.5 * torch.sum(mu.square() + logvar.exp() - 1.0 - logvar, dim=1)


def vae_loss(
    recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, beta: float
) -> VAELoss:
    """β-VAE loss with the reductions stated once, here:

    - reconstruction: mean squared error averaged over every element (samples × genes), so it reads as
      a per-gene z-score error whatever the gene count;
    - KL: summed over the latent dimensions, averaged over the batch;
    - total = recon + β · KL (paper β = 0.005).

    Both terms are computed in fp32 even when the network ran under bf16 autocast.
    """
    recon_term = F.mse_loss(recon.float(), target.float(), reduction="mean")
    kl_term = gaussian_kl(mu, logvar).mean()
    return VAELoss(total=recon_term + beta * kl_term, recon=recon_term, kl=kl_term)
