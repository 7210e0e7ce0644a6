"""Losses shared by mmquant's models: ranking and matching losses for joint embeddings (``contrastive``), adversarial
divergences to a latent prior (``divergences``) and text-to-image GAN losses (``adversarial``)."""

from .adversarial import discriminator_loss, generator_adversarial_loss, kl_to_standard_normal
from .contrastive import damsm_loss, max_hinge_loss, paired_mse_loss, symmetric_matching_loss, word_region_scores
from .divergences import LatentCritic, critic_loss, gaussian_frechet_distance, prior_matching_loss

__all__ = [
    "LatentCritic",
    "critic_loss",
    "damsm_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "kl_to_standard_normal",
    "symmetric_matching_loss",
    "word_region_scores",
    "gaussian_frechet_distance",
    "max_hinge_loss",
    "paired_mse_loss",
    "prior_matching_loss",
]
