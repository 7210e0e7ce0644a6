"""Fixed sine-cosine position encodings ("Attention Is All You Need", sec. 3.5; the 2-D form as in MAE / ViT-style
models: half the channels encode the row, half the column)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["sincos_positions_1d", "sincos_positions_2d"]


def sincos_positions_1d(length: int, dim: int) -> Tensor:
    """`(length, dim)`: channel `2i` is `sin(p / 10000^(2i/dim))`, channel `2i+1` the cosine (`dim` even)."""
    if dim % 2:
        raise ValueError(f"dim={dim}: sine-cosine positions need an even number of channels.")
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (dim/2,)
    out = torch.zeros(length, dim)
    out[:, 0::2] = torch.sin(position * frequency)
    out[:, 1::2] = torch.cos(position * frequency)
    return out


def sincos_positions_2d(height: int, width: int, dim: int) -> Tensor:
    """`(height * width, dim)` in row-major order: the first `dim / 2` channels encode the row, the rest the column
    (`dim` divisible by 4)."""
    if dim % 4:
        raise ValueError(f"dim={dim}: 2-D sine-cosine positions need a multiple of 4 channels.")
    rows = sincos_positions_1d(height, dim // 2)[:, None].expand(height, width, dim // 2)
    cols = sincos_positions_1d(width, dim // 2)[None].expand(height, width, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(height * width, dim)
