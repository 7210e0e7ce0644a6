"""Synthetic images made on the spot (no download): coloured discs, bars and squares on dark backgrounds.

Deterministic for a given seed; used by the offline demo, smoke runs and tests.
"""

from __future__ import annotations

import torch

__all__ = ["synthetic_images"]


def synthetic_images(num_images: int, image_size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """``(num_images, channels, image_size, image_size)`` float32 images in ``[0, 1]``.

    Each image holds one to three shapes (disc, square or bar) of random colour, position and size.
    """
    if num_images < 0 or image_size < 4 or channels not in (1, 3):
        raise ValueError(
            f"synthetic_images: expected num_images >= 0, image_size >= 4 and channels in (1, 3); got "
            f"{num_images}, {image_size}, {channels}."
        )
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(image_size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)
    images = 0.1 * torch.rand(num_images, channels, 1, 1, generator=g).expand(-1, -1, image_size, image_size).clone()
    for i in range(num_images):
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            cy, cx = (torch.rand(2, generator=g) * image_size).tolist()
            r = float(image_size * (0.12 + 0.2 * torch.rand(1, generator=g)))
            kind = int(torch.randint(0, 3, (1,), generator=g))
            if kind == 0:
                shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            elif kind == 1:
                shape = ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)
            else:
                shape = ((yy - cy).abs() <= r / 3) & ((xx - cx).abs() <= 1.5 * r)
            colour = 0.3 + 0.7 * torch.rand(channels, 1, 1, generator=g)
            images[i] = torch.where(shape, colour, images[i])
    return images
