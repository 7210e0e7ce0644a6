"""Pure metric functions (torch only): PSNR, SSIM and codebook usage. The ``evaluate`` modules in the folders beside
this file are thin wrappers around them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..quantizers.functional import code_usage_and_perplexity

__all__ = ["codebook_usage", "psnr", "ssim"]


def _check_images(predictions: Tensor, references: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    for name, t in (("predictions", predictions), ("references", references)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise ValueError(
                f"{name}: expected a floating-point tensor, got {type(t).__name__} {getattr(t, 'dtype', '')}."
            )
        if t.ndim not in (3, 4):
            raise ValueError(
                f"{name}: expected (batch, channels, height, width) or (batch, height, width), got "
                f"shape {tuple(t.shape)}."
            )
        if t.shape[0] == 0:
            raise ValueError(f"{name}: the batch is empty.")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: contains NaN or Inf.")
    if predictions.shape != references.shape:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and references {tuple(references.shape)}: expected "
            f"the same shape."
        )
    if not (data_range > 0 and math.isfinite(data_range)):
        raise ValueError(f"data_range={data_range!r}: expected a finite positive number (e.g. 1.0 or 255).")
    if predictions.ndim == 3:
        predictions, references = predictions[:, None], references[:, None]
    return predictions.double(), references.double()


def _reduce(scores: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return scores.mean()
    if reduction == "none":
        return scores
    raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'none'.")


def psnr(predictions: Tensor, references: Tensor, data_range: float = 1.0, reduction: str = "mean") -> Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(data_range^2 / MSE)`` with the MSE over all its pixels.

    Args:
        predictions, references: ``(B, C, H, W)`` or ``(B, H, W)`` float images.
        data_range: the span of pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for bytes).
        reduction: ``"mean"`` (mean of the per-image PSNRs) or ``"none"`` (``(B,)``).

    Identical images give ``inf``.

    Example:

    >>> import torch
    >>> round(float(psnr(torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 0.6))), 4)  # MSE 0.01 -> 20 dB
    20.0
    """
    p, r = _check_images(predictions, references, data_range)
    mse = (p - r).pow(2).flatten(1).mean(1)  # (B,)
    scores = 10 * torch.log10(data_range**2 / mse)
    return _reduce(scores.float(), reduction)


def _gaussian_window(win_size: int, sigma: float, dtype, device) -> Tensor:
    coords = torch.arange(win_size, dtype=dtype, device=device) - (win_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    predictions: Tensor,
    references: Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, per channel then averaged, per image.

    Computed over the valid region (no padding), with population (co)variances: the convention of
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Example:

    >>> import torch
    >>> x = torch.rand(2, 1, 16, 16)
    >>> float(ssim(x, x))
    1.0
    """
    p, r = _check_images(predictions, references, data_range)
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size={win_size!r}: expected a positive odd integer.")
    if min(p.shape[-2:]) < win_size:
        raise ValueError(f"predictions: images of {p.shape[-2]}x{p.shape[-1]} are smaller than win_size={win_size}.")
    g = _gaussian_window(win_size, sigma, p.dtype, p.device)
    channels = p.shape[1]

    def blur(x: Tensor) -> Tensor:  # separable Gaussian filter, valid region: (B, C, H', W')
        x = torch.nn.functional.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        return torch.nn.functional.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)

    mu_p, mu_r = blur(p), blur(r)
    var_p = blur(p * p) - mu_p**2
    var_r = blur(r * r) - mu_r**2
    cov = blur(p * r) - mu_p * mu_r
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_p * mu_r + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_r**2 + c1) * (var_p + var_r + c2))
    return _reduce(ssim_map.flatten(1).mean(1).float(), reduction)


def codebook_usage(indices: Tensor, codebook_size: int) -> dict:
    """Usage statistics of code ``indices`` (any shape) over a codebook of ``codebook_size`` codes.

    Returns ``usage`` (fraction of codes used at least once), ``perplexity`` (exp of the entropy of the code
    histogram), ``dead_codes`` and ``num_tokens``.

    Example:

    >>> import torch
    >>> codebook_usage(torch.tensor([0, 1, 1, 3]), codebook_size=4)["usage"]
    0.75
    """
    if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise ValueError(
            f"indices: expected an integer tensor, got {type(indices).__name__} {getattr(indices, 'dtype', '')}."
        )
    if not isinstance(codebook_size, int) or codebook_size < 1:
        raise ValueError(f"codebook_size={codebook_size!r}: expected a positive integer.")
    flat = indices.reshape(-1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= codebook_size):
        raise ValueError(
            f"indices: values must be in [0, {codebook_size}), got min {int(flat.min())} and max {int(flat.max())}."
        )
    counts = torch.bincount(flat, minlength=codebook_size)
    usage, perplexity = code_usage_and_perplexity(counts)
    return {
        "usage": float(usage),
        "perplexity": float(perplexity),
        "dead_codes": int((counts == 0).sum()),
        "num_tokens": int(flat.numel()),
    }
