"""Frozen grid features of a canvas: a small CNN, pretrained as a grayscale digit classifier, applied to every crop of
a fixed grid (the four quadrants and the canvas pooled by 2) and to every colour channel apart.

This is the Caption MNIST analogue of the precomputed CNN features jWAE and VSE++ encode on COCO and Flickr30k
(a frozen ImageNet-trained ResNet-152; jWAE paper Sec. 4): the image side starts from features of a network trained
on a different task and data (MNIST digit labels, never the captions), and the model learns only the linear map to
its latent. Applying the CNN per colour channel lets a colour-blind digit classifier carry colour: a red digit shows up
in the red channel's features only, a white one in all three.

canvas (B, C, S, S) in [-1, 1] -> crops (B, 5, C, S/2, S/2) -> CNN per (crop, channel) -> features (B, 5 * C * F)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DigitCNN", "GridFeatures", "canvas_crops"]


def canvas_crops(pixel_values: Tensor) -> Tensor:
    """Canvases ``(B, C, S, S)`` -> crops ``(B, 5, C, S/2, S/2)``: the quadrants (upper left, upper right, bottom left,
    bottom right), then the whole canvas average-pooled by 2 (a single-layout digit, 56 px at 64, becomes a
    quadrant-sized 28 px digit)."""
    half = pixel_values.shape[-1] // 2
    quadrants = [
        pixel_values[..., r * half : (r + 1) * half, c * half : (c + 1) * half] for r in (0, 1) for c in (0, 1)
    ]
    whole = F.avg_pool2d(pixel_values, 2)  # (B, C, S/2, S/2)
    return torch.stack([*quadrants, whole], dim=1)


class DigitCNN(nn.Module):
    """One-channel crops ``(N, 1, s, s)`` in [0, 1] -> features ``(N, feature_dim)`` (after ReLU): 3x3 convolutions
    with ReLU, 2x2 max pooling after each level, and a linear layer on the flattened map. Pretrained with a linear
    digit classifier on top (``examples/jwae/pretrain_grid_features.py``), then used frozen."""

    def __init__(self, crop_size: int = 16, channels: Sequence[int] = (16, 32), feature_dim: int = 32):
        super().__init__()
        if crop_size % 2 ** len(channels):
            raise ValueError(f"crop_size={crop_size}: expected a multiple of 2**len(channels) = {2 ** len(channels)}.")
        layers: list[nn.Module] = []
        in_channels = 1
        for width in channels:
            layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = width
        self.convs = nn.Sequential(*layers)
        side = crop_size // 2 ** len(channels)
        self.proj = nn.Linear(in_channels * side * side, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, crops: Tensor) -> Tensor:
        h = self.convs(crops).flatten(1)  # (N, channels[-1] * (s / 2^levels)^2)
        return F.relu(self.proj(h))  # (N, feature_dim)


class GridFeatures(nn.Module):
    """Canvases ``(B, C, S, S)`` in [-1, 1] -> frozen features ``(B, 5 * C * feature_dim)``, ordered (crop, channel,
    feature). The CNN runs without gradients (its parameters are also created with ``requires_grad=False``, so an
    optimizer skips them) and has no train/eval-dependent layers: the same function in training and inference."""

    def __init__(self, crop_size: int = 16, channels: Sequence[int] = (16, 32), feature_dim: int = 32):
        super().__init__()
        self.cnn = DigitCNN(crop_size, channels, feature_dim)
        self.cnn.requires_grad_(False)

    def forward(self, pixel_values: Tensor) -> Tensor:
        crops = canvas_crops((pixel_values + 1) / 2)  # (B, 5, C, s, s) in [0, 1]
        b, n, c, s, _ = crops.shape
        with torch.no_grad():
            features = self.cnn(crops.reshape(b * n * c, 1, s, s))  # (B * 5 * C, F)
        return features.view(b, n * c * self.cnn.feature_dim)  # (B, 5 * C * F)
