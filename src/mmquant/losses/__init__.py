"""Losses shared by mmquant's models: ranking losses for joint embeddings (``contrastive``) and adversarial
divergences to a latent prior (``divergences``)."""

from .contrastive import max_hinge_loss, paired_mse_loss
from .divergences import LatentCritic, critic_loss, gaussian_frechet_distance, prior_matching_loss

__all__ = [
    "LatentCritic",
    "critic_loss",
    "gaussian_frechet_distance",
    "max_hinge_loss",
    "paired_mse_loss",
    "prior_matching_loss",
]
