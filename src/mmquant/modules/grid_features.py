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

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DigitCNN",
    "GridFeatures",
    "canvas_crops",
    "exchange_quadrants",
    "load_digit_cnn",
    "read_pretrained_digit_cnn",
]

# what examples/jwae/pretrain_grid_features.py writes: the CNN without its classifier, and its shape and record
WEIGHTS, INFO = "grid_features.safetensors", "grid_features.json"
PRETRAIN = "python examples/jwae/pretrain_grid_features.py --output_dir {folder}"


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


# the six pairs of quadrants (indices into canvas_crops' order), in the order exchange_quadrants stacks them
QUADRANT_PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]


def exchange_quadrants(images: Tensor) -> Tensor:
    """``images (B, C, H, W)`` with each of the six pairs of their quadrants exchanged, ``(6B, C, H, W)`` (pair by
    pair, in ``QUADRANT_PAIRS`` order): the same contents at the same places, but two of them bound to each other's
    place."""
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    corners = [(0, 0), (0, w), (h, 0), (h, w)]
    out = []
    for i, j in QUADRANT_PAIRS:
        (y0, x0), (y1, x1) = corners[i], corners[j]
        x = images.clone()
        x[..., y0 : y0 + h, x0 : x0 + w] = images[..., y1 : y1 + h, x1 : x1 + w]
        x[..., y1 : y1 + h, x1 : x1 + w] = images[..., y0 : y0 + h, x0 : x0 + w]
        out.append(x)
    return torch.cat(out)


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
        self.channels = list(channels)
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

    def crop_features(self, pixel_values: Tensor) -> Tensor:
        """Canvases ``(B, C, S, S)`` -> features per crop ``(B, 5, C * F)``, differentiable in the pixels (the CNN's
        own parameters stay frozen): a generator can be trained through them."""
        crops = canvas_crops((pixel_values + 1) / 2)  # (B, 5, C, s, s) in [0, 1]
        b, n, c, s, _ = crops.shape
        features = self.cnn(crops.reshape(b * n * c, 1, s, s))  # (B * 5 * C, F)
        return features.view(b, n, c * self.cnn.feature_dim)

    def exchanged_crop_features(self, pixel_values: Tensor, features: Tensor | None = None) -> Tensor:
        """``crop_features(exchange_quadrants(pixel_values))``, ``(6B, 5, C * F)``, at a fifth of its cost: exchanging
        two quadrants only permutes the four quadrant crops, whose features are read once; the CNN reads again only
        the pooled whole canvases with their quadrants exchanged (pooling by 2 keeps each quadrant apart when the
        quadrants' side is even; otherwise the exchanged canvases are read whole). ``features``:
        ``crop_features(pixel_values)`` when already computed."""
        b, c, s = pixel_values.shape[0], pixel_values.shape[1], pixel_values.shape[-1] // 2
        if s % 2:  # pooling by 2 would mix two quadrants' pixels
            return self.crop_features(exchange_quadrants(pixel_values))
        if features is None:
            features = self.crop_features(pixel_values)  # (B, 5, C * F)
        whole = exchange_quadrants(F.avg_pool2d((pixel_values + 1) / 2, 2))  # (6B, C, s, s), as canvas_crops pools
        whole = self.cnn(whole.reshape(6 * b * c, 1, s, s)).view(6 * b, 1, c * self.cnn.feature_dim)
        quadrants = []
        for i, j in QUADRANT_PAIRS:
            order = list(range(4))
            order[i], order[j] = j, i
            quadrants.append(features[:, order])  # (B, 4, C * F): crop i now shows quadrant j and back
        return torch.cat([torch.cat(quadrants), whole], dim=1)  # (6B, 5, C * F)

    def forward(self, pixel_values: Tensor) -> Tensor:
        with torch.no_grad():
            return self.crop_features(pixel_values).flatten(1)  # (B, 5 * C * F)


def read_pretrained_digit_cnn(folder: str | Path, argument: str = "--grid_features") -> tuple[dict, dict]:
    """The pretrained CNN's state dict and record from a ``pretrain_grid_features.py`` output folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / INFO).is_file():
        raise FileNotFoundError(
            f"{argument} {folder}: no {WEIGHTS} / {INFO} there; make them with `{PRETRAIN.format(folder=folder)}`."
        )
    return load_file(str(folder / WEIGHTS)), json.loads((folder / INFO).read_text())


def load_digit_cnn(cnn: DigitCNN, folder: str | Path, crop_size: int, argument: str = "--grid_features") -> dict:
    """Load the CNN pretrained in ``folder`` into ``cnn`` after checking that it has ``cnn``'s shape (conv widths,
    features per crop) and was pretrained on ``crop_size`` crops; returns its record."""
    state, info = read_pretrained_digit_cnn(folder, argument)
    expected = dict(grid_feature_channels=cnn.channels, grid_feature_dim=cnn.feature_dim, crop_size=crop_size)
    found = {k: info.get(k) for k in expected}
    if found != expected:
        raise ValueError(f"{argument} {folder}: the CNN was pretrained with {found}; this model needs {expected}.")
    cnn.load_state_dict(state)
    return info
