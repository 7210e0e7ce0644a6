"""Conditional image discriminators for text-to-image GANs (StackGAN++ / AttnGAN): each scores an image alone
(unconditional) and together with a sentence feature (conditional); one per generator stage."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MultiScaleDiscriminator", "StageDiscriminator"]


class StageDiscriminator(nn.Module):
    """``images (B, C, S, S)``, ``sentence (B, D)`` -> unconditional and conditional logits, each ``(B,)``."""

    def __init__(self, in_channels: int, size: int, channels: int, condition_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = channels
        for _ in range(int(math.log2(size // 4)) - 1):  # down to 4x4
            layers += [nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.unconditional = nn.Conv2d(ch, 1, 4)
        joint = nn.Conv2d(ch + condition_dim, ch, 3, padding=1)
        self.joint = nn.Sequential(joint, nn.BatchNorm2d(ch), nn.LeakyReLU(0.2))
        self.conditional = nn.Conv2d(ch, 1, 4)

    def forward(self, images: Tensor, sentence: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(images)  # (B, ch, 4, 4)
        s = sentence[:, :, None, None].expand(-1, -1, *h.shape[2:])  # (B, D, 4, 4)
        joint = self.joint(torch.cat([h, s], dim=1))
        return self.unconditional(h).flatten(), self.conditional(joint).flatten()


class MultiScaleDiscriminator(nn.ModuleList):
    """One :class:`StageDiscriminator` per image size; called with the list of stage images."""

    def __init__(self, in_channels: int, sizes: Sequence[int], channels: int, condition_dim: int):
        super().__init__(StageDiscriminator(in_channels, s, channels, condition_dim) for s in sizes)

    def forward(self, images: Sequence[Tensor], sentence: Tensor) -> list[tuple[Tensor, Tensor]]:
        if len(images) != len(self):
            raise ValueError(f"images: expected {len(self)} stage images, got {len(images)}.")
        return [d(x, sentence) for d, x in zip(self, images)]
