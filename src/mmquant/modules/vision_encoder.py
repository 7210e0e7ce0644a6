"""Image encoders giving a grid of region features and a global feature (the LAViTeR / AttnGAN DAMSM image
encoder): a small CNN trained from scratch, a frozen pretrained digit CNN over the quadrants (Caption MNIST), or
torchvision's InceptionV3 (``Mixed_6e`` regions, last pooling global) with its weights read from a local file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .grid_features import GridFeatures

__all__ = ["CNNRegionEncoder", "DigitGridRegionEncoder", "InceptionRegionEncoder"]


class CNNRegionEncoder(nn.Module):
    """``(B, C, H, W)`` -> regions ``(B, (H / 2^n)^2, D)`` and global ``(B, D)``, with ``n = len(channels)``."""

    output_layers = ("region_proj", "global_proj")  # what trains when the backbone is frozen

    def __init__(self, in_channels: int, channels: Sequence[int], dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:  # each halves the resolution
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]
            prev = ch
        layers += [nn.Conv2d(prev, prev, 3, padding=1), nn.LeakyReLU(0.2)]
        self.backbone = nn.Sequential(*layers)
        self.region_proj = nn.Conv2d(prev, dim, 1)  # the output layers ("projection" of section 3.1)
        self.global_proj = nn.Linear(prev, dim)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        h = self.backbone(pixel_values)  # (B, C, h, w)
        regions = self.region_proj(h).flatten(2).transpose(1, 2)  # (B, h*w, D)
        return regions, self.global_proj(h.mean((2, 3)))  # (B, D)


class DigitGridRegionEncoder(nn.Module):
    """``(B, C, S, S)`` -> regions ``(B, 5, D)`` and global ``(B, D)`` from frozen pretrained features: Caption MNIST's
    counterpart of the paper's ImageNet InceptionV3. A small CNN pretrained as an MNIST digit classifier
    (:class:`~mmquant.modules.grid_features.GridFeatures`) reads the four quadrants and the canvas pooled by 2, each
    colour channel apart; each crop's features are one region, all of them together the global feature. The CNN reads
    every crop alike, so each region adds a learned embedding of its place (upper left ... bottom right, whole canvas):
    the word-region matching can then tie "upper left" to a region, as a caption needs. The projected content is
    layer-normalised and the place embedding starts at the same scale: the frozen CNN's features of a digit are an
    order of magnitude larger than an embedding started near zero, which then carried no place, so which digit sat
    where was lost (captions named the right digits at swapped places). Only the projections, the normalisation and
    the place embeddings train; gradients still reach the pixels, so generated images are matched through the frozen
    CNN."""

    output_layers = ("region_proj", "region_norm", "region_position", "global_proj")

    def __init__(self, in_channels: int, image_size: int, channels: Sequence[int], feature_dim: int, dim: int):
        super().__init__()
        self.grid = GridFeatures(image_size // 2, channels, feature_dim)  # frozen; load_digit_cnn fills it
        per_crop = in_channels * feature_dim
        self.region_proj = nn.Linear(per_crop, dim)
        self.region_norm = nn.LayerNorm(dim)
        self.global_proj = nn.Linear(5 * per_crop, dim)
        self.region_position = nn.Parameter(torch.randn(1, 5, dim))  # the scale of the normalised content

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        return self._project(self.grid.crop_features(pixel_values))  # (B, 5, D), (B, D)

    def with_exchanged_quadrants(self, pixel_values: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """``forward(pixel_values)`` and ``forward(exchange_quadrants(pixel_values))`` (``(6B, 5, D)``, ``(6B, D)``),
        reading each quadrant once (:meth:`GridFeatures.exchanged_crop_features`)."""
        features = self.grid.crop_features(pixel_values)  # (B, 5, C * F)
        return self._project(features), self._project(self.grid.exchanged_crop_features(pixel_values, features))

    def _project(self, features: Tensor) -> tuple[Tensor, Tensor]:
        regions = self.region_norm(self.region_proj(features)) + self.region_position  # (B, 5, D)
        return regions, self.global_proj(features.flatten(1))  # (B, 5, D), (B, D)


class InceptionRegionEncoder(nn.Module):
    """InceptionV3 (Szegedy et al. 2016) as in the paper: 17x17 ``Mixed_6e`` regions and the 2048-d pooled feature,
    each projected to ``dim``. Needs ``torchvision``; ``weights`` is a local ImageNet state dict (or ``None``: random
    initialisation, for tests)."""

    output_layers = ("region_proj", "global_proj")

    def __init__(self, dim: int, weights: str | None = None):
        super().__init__()
        try:
            from torchvision.models import inception_v3
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("backbone='inception_v3' needs torchvision: pip install torchvision") from err
        net = inception_v3(weights=None, aux_logits=False, init_weights=weights is None)
        if weights is not None:
            net.load_state_dict(_read_state_dict(weights), strict=False)
        self.stem = nn.Sequential(*[getattr(net, name) for name in _INCEPTION_TO_6E])
        self.tail = nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c)
        self.region_proj = nn.Conv2d(768, dim, 1)
        self.global_proj = nn.Linear(2048, dim)
        # torchvision's ImageNet normalisation, applied to images given in [-1, 1]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        x = F.interpolate(pixel_values, size=(299, 299), mode="bilinear", align_corners=False)
        x = ((x + 1) / 2 - self.mean) / self.std  # (B, 3, 299, 299)
        mixed_6e = self.stem(x)  # (B, 768, 17, 17)
        pooled = self.tail(mixed_6e).mean((2, 3))  # (B, 2048)
        return self.region_proj(mixed_6e).flatten(2).transpose(1, 2), self.global_proj(pooled)


_INCEPTION_TO_6E = [
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
]


def _read_state_dict(path: str) -> dict:
    """A local state dict: safetensors, or a torch file loaded with ``weights_only=True`` (no arbitrary pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone_weights={str(path)!r}: no such file (give a local InceptionV3 state dict).")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)
