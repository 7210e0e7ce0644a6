"""Where a quadrant image puts its colours, read without a network: for blurry generated canvases (a generator trained
by regression draws the average digit, which a digit reader cannot read), whether the brightest quadrants are the
caption's and whether each named quadrant's mean colour is the caption's colour for it. Used by the LAViTeR
generator probes to tell whether the generator's conditioning binds each colour to its place."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..data.caption_grammar import QUADRANTS, parse_caption
from ..data.caption_mnist import COLORS, DEFAULT_COLORS

__all__ = ["quadrant_layout_accuracy"]


@torch.no_grad()
def quadrant_layout_accuracy(
    pixel_values: Tensor, captions: Sequence[str], colors: Sequence[str] = DEFAULT_COLORS
) -> dict[str, float]:
    """Layout of quadrant canvases `(N, 3, H, W)` in [-1, 1] against their captions (Caption MNIST quadrant layouts).

    Returns, as fractions of the captions' objects: ``place`` (the object's quadrant is among the caption's number of
    brightest quadrants) and ``color`` (the brightness-weighted mean colour of its quadrant, scaled to a maximum of 1,
    is nearest to its colour's RGB among ``colors``).

    >>> import torch
    >>> x = -torch.ones(1, 3, 8, 8)
    >>> x[0, 0, :4, :4] = 1.0  # red upper left
    >>> quadrant_layout_accuracy(x, ["the red 3 is on the upper left."])
    {'place': 1.0, 'color': 1.0}
    """
    if pixel_values.ndim != 4 or pixel_values.shape[1] != 3 or len(pixel_values) != len(captions):
        raise ValueError(
            f"pixel_values {tuple(pixel_values.shape)}, captions {len(captions)}: expected (N, 3, H, W) images, one "
            "caption each."
        )
    palette = torch.tensor([COLORS[c] for c in colors], dtype=torch.float32) / 255  # (C, 3)
    images = (pixel_values.float().clamp(-1, 1) + 1) / 2  # (N, 3, H, W) in [0, 1]
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    quadrants = images.unfold(2, h, h).unfold(3, w, w)[:, :, :2, :2]  # (N, 3, 2, 2, h, w)
    quadrants = quadrants.flatten(-2).permute(0, 2, 3, 1, 4).flatten(1, 2)  # (N, 4 in QUADRANTS order, 3, hw)
    weights = quadrants.mean(2, keepdim=True)  # (N, 4, 1, hw): brightness
    mean = (quadrants * weights).sum(-1) / (weights.sum(-1) + 1e-8)  # (N, 4, 3)
    mean = mean / (mean.amax(-1, keepdim=True) + 1e-8)
    nearest = torch.cdist(mean, palette[None].expand(len(mean), -1, -1)).argmin(-1)  # (N, 4)
    brightness = weights.mean((-2, -1))  # (N, 4)
    place = color = total = 0
    for i, caption in enumerate(captions):
        objects = parse_caption(caption, colors)
        brightest = set(brightness[i].argsort(descending=True)[: len(objects)].tolist())
        for o in objects:
            q = QUADRANTS.index(o.position)
            total += 1
            place += q in brightest
            color += colors[int(nearest[i, q])] == o.color
    return {"place": place / max(total, 1), "color": color / max(total, 1)}
