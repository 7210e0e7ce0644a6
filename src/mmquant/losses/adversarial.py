"""Adversarial losses of conditional text-to-image GANs (StackGAN++ / AttnGAN, the LAViTeR TIM, eqs. 9-10): each
discriminator stage gives an unconditional logit (real or generated?) and a conditional one (does the image match
the sentence?); plus the KL term of conditioning augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["discriminator_loss", "generator_adversarial_loss", "kl_to_standard_normal"]


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


def generator_adversarial_loss(fake: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Eq. 9, summed over stages: each generated image should pass as real, alone and with its sentence."""
    return sum(_bce(unconditional, 1.0) + _bce(conditional, 1.0) for unconditional, conditional in fake)


def discriminator_loss(
    real: list[tuple[Tensor, Tensor]], fake: list[tuple[Tensor, Tensor]], mismatched: list[Tensor]
) -> Tensor:
    """Eq. 10, summed over stages: real images score real (alone and with their sentence), generated ones fake,
    and real images with another pair's sentence fake for the conditional logit (AttnGAN's mismatched pairs)."""
    total = 0.0
    for (real_u, real_c), (fake_u, fake_c), wrong_c in zip(real, fake, mismatched):
        unconditional = _bce(real_u, 1.0) + _bce(fake_u, 0.0)
        conditional = _bce(real_c, 1.0) + (_bce(fake_c, 0.0) + _bce(wrong_c, 0.0)) / 2
        total = total + unconditional + conditional
    return total


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))``, averaged over the batch and dimensions (conditioning augmentation)."""
    return 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).mean()
