"""Matching an encoder's latent distribution to a prior, as Wasserstein autoencoders do (Tolstikhin et al.,
"Wasserstein Auto-Encoders", ICLR 2018, arXiv:1711.01558, WAE-GAN): a latent critic tells prior samples from
encoded latents, and the encoder is trained to fool it. With the critic at its optimum the encoder's adversarial
loss estimates the Jensen–Shannon divergence D_JS(F || P_L) of the jWAE loss (Mahajan et al., ICCV Workshops 2019).

* :class:`LatentCritic`: an MLP ``(B, D) -> (B,)`` logit, "is this a sample of the prior?" (jWAE's reference code:
  one hidden layer of 256, LeakyReLU 0.01).
* :func:`critic_loss`: the critic's binary cross-entropy, prior samples real, latents fake.
* :func:`prior_matching_loss`: the encoder's (non-saturating) adversarial loss, latents labelled real.
* :func:`gaussian_frechet_distance`: a critic-free statistic of how far latents are from N(0, I).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LatentCritic", "critic_loss", "gaussian_frechet_distance", "prior_matching_loss"]


class LatentCritic(nn.Module):
    """``(B, latent_dim)`` -> ``(B,)`` logits that the latent was drawn from the prior."""

    def __init__(self, latent_dim: int, hidden_size: int = 256, num_layers: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.LeakyReLU(0.01)]
            width = hidden_size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, latents: Tensor) -> Tensor:
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(
                f"latents: expected shape (batch, latent_dim={self.latent_dim}), got {tuple(latents.shape)}."
            )
        return self.net(latents).squeeze(-1)  # (B,)


def critic_loss(critic: nn.Module, latents: Tensor, prior_samples: Tensor) -> Tensor:
    """BCE of the critic on prior samples (label 1) and detached latents (label 0), in one critic call (so a
    DistributedDataParallel critic sees a single forward per backward)."""
    if latents.ndim != 2 or prior_samples.ndim != 2 or latents.shape[1] != prior_samples.shape[1]:
        raise ValueError(
            f"latents {tuple(latents.shape)} and prior_samples {tuple(prior_samples.shape)}: expected two (batch, "
            "latent_dim) tensors with the same latent_dim."
        )
    logits = critic(torch.cat([prior_samples, latents.detach()]))  # (P + B,)
    labels = torch.cat([logits.new_ones(len(prior_samples)), logits.new_zeros(len(latents))])
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def prior_matching_loss(critic: nn.Module, latents: Tensor) -> Tensor:
    """The encoder's side of D_JS(F || P_L): BCE of the critic on the latents labelled as prior samples.

    The critic is applied with detached parameters, so this loss trains the encoder only (the critic's own update is
    :func:`critic_loss`); pass the plain critic module, not a DistributedDataParallel wrapper."""
    params = {name: p.detach() for name, p in critic.named_parameters()}
    logits = torch.func.functional_call(critic, params, (latents,))  # (B,)
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits, dtype=torch.float32))


def gaussian_frechet_distance(latents: Tensor) -> Tensor:
    """Fréchet distance between N(mean, cov) of ``latents`` ``(N, D)`` and the prior N(0, I), divided by D:
    ``(|mu|^2 + tr(cov + I - 2 cov^{1/2})) / D``; 0 for latents distributed as the prior."""
    if latents.ndim != 2 or len(latents) < 2:
        raise ValueError(f"latents: expected shape (N >= 2, D), got {tuple(latents.shape)}.")
    z = latents.double()
    mean = z.mean(0)
    cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
    eigenvalues = torch.linalg.eigvalsh(cov).clamp(min=0)  # cov is symmetric PSD: tr(cov^{1/2}) = sum sqrt(eig)
    distance = mean.square().sum() + eigenvalues.sum() + z.shape[1] - 2 * eigenvalues.sqrt().sum()
    return (distance / z.shape[1]).float()
