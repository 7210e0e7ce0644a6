"""Pure metric functions (placeholder until the full module lands): PSNR."""

from __future__ import annotations

import torch
from torch import Tensor


def psnr(predictions: Tensor, references: Tensor, data_range: float = 1.0, reduction: str = "mean") -> Tensor:
    """Per-image PSNR in dB, ``10 log10(data_range^2 / MSE)``; mean over images or per image (``"none"``)."""
    if predictions.shape != references.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and references {tuple(references.shape)} differ.")
    mse = (predictions.float() - references.float()).pow(2).flatten(1).mean(1)
    scores = 10 * torch.log10(data_range**2 / mse)
    return scores.mean() if reduction == "mean" else scores
