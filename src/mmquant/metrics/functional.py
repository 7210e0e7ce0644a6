"""Pure metric functions (torch only): PSNR, SSIM and codebook usage.

The ``evaluate`` modules in the folders beside this file (``psnr/``, ``ssim/``, ``codebook_usage/``) are thin
wrappers around these functions. SSIM: Wang et al., "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004; reference implementation ``skimage.metrics.structural_similarity``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..limits import MAX_CODEBOOK_SIZE, check_int
from ..quantizers.functional import check_index_range, usage_statistics

__all__ = ["codebook_usage", "psnr", "ssim"]


def _check_images(predictions: Tensor, references: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Validate an image pair and return it as float64 ``(B, C, H, W)``."""
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
            raise ValueError(f"{name}: expected at least one image, got an empty batch of shape {tuple(t.shape)}.")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: expected finite values, got NaN or Inf.")
    if predictions.shape != references.shape:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and references {tuple(references.shape)}: expected "
            f"the same shape."
        )
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)):
        raise ValueError(f"data_range={data_range!r}: expected a positive number (e.g. 1.0 or 255).")
    if not (data_range > 0 and math.isfinite(data_range)):
        raise ValueError(f"data_range={data_range!r}: expected a finite positive number (e.g. 1.0 or 255).")
    if predictions.ndim == 3:
        predictions, references = predictions[:, None], references[:, None]
    return predictions.double(), references.double()


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}={value!r}: expected a finite positive number.")


def _reduce(scores: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return scores.mean()
    if reduction == "none":
        return scores
    raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'none'.")


def _nested_to_tensor(values, name: str, dtype: torch.dtype) -> Tensor:
    """Nested lists (as evaluate hands them to ``_compute``) to a tensor; a ragged input names its argument."""
    try:
        return torch.as_tensor(values, dtype=dtype)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: expected images of one shape (nested lists of numbers), got {err}") from err


def psnr(predictions: Tensor, references: Tensor, data_range: float = 1.0, reduction: str = "mean") -> Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(data_range^2 / MSE)`` with the MSE over all its pixels.

    Args:
        predictions (`torch.Tensor`): ``(B, C, H, W)`` or ``(B, H, W)`` float images (e.g. reconstructions).
        references (`torch.Tensor`): the reference images, same shape.
        data_range (`float`, defaults to 1.0): span of the pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for
            bytes).
        reduction (`str`, defaults to ``"mean"``): ``"mean"`` (mean over images of the per-image PSNR, a 0-d
            tensor) or ``"none"`` (the per-image PSNRs, ``(B,)``).

    An image identical to its reference has MSE 0 and PSNR ``+inf`` (and then so has the mean); callers that want a
    finite number clamp it, e.g. ``psnr(p, r, reduction="none").clamp(max=100).mean()``.

    Example:

    >>> import torch
    >>> round(float(psnr(torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 0.6))), 4)  # MSE 0.01 -> 20 dB
    20.0
    >>> psnr(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), reduction="none")
    tensor([inf, inf])
    """
    p, r = _check_images(predictions, references, data_range)
    mse = (p - r).pow(2).flatten(1).mean(1)  # (B,)
    scores = 10 * torch.log10(data_range**2 / mse)
    return _reduce(scores.float(), reduction)


def _gaussian_window(win_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
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

    The local means, variances and covariance are Gaussian-weighted (population, not sample, statistics) and the
    SSIM map is averaged over the valid region only (no padding): the convention of
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range, channel_axis=0)``, which filters then crops ``(win_size - 1) // 2`` pixels per side.

    Args:
        predictions (`torch.Tensor`): ``(B, C, H, W)`` or ``(B, H, W)`` float images, at least ``win_size`` pixels
            high and wide.
        references (`torch.Tensor`): the reference images, same shape.
        data_range (`float`, defaults to 1.0): span of the pixel values; sets ``C1 = (k1 * data_range)^2`` and
            ``C2 = (k2 * data_range)^2``.
        win_size (`int`, defaults to 11): odd side of the Gaussian window (11 is skimage's for ``sigma=1.5``).
        sigma (`float`, defaults to 1.5): standard deviation of the Gaussian window.
        k1, k2 (`float`, default to 0.01 and 0.03): the stabilising constants of the paper.
        reduction (`str`, defaults to ``"mean"``): ``"mean"`` (0-d tensor) or ``"none"`` (``(B,)``).

    Returns values in [-1, 1]; 1 for identical images.

    Example:

    >>> import torch
    >>> x = torch.rand(2, 1, 16, 16)
    >>> float(ssim(x, x))
    1.0
    """
    p, r = _check_images(predictions, references, data_range)
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size={win_size!r}: expected a positive odd integer (e.g. 11).")
    for name, value in (("sigma", sigma), ("k1", k1), ("k2", k2)):
        _positive(name, value)
    if min(p.shape[-2:]) < win_size:
        raise ValueError(
            f"predictions: images of {p.shape[-2]}x{p.shape[-1]} pixels are smaller than win_size={win_size}; "
            f"expected height and width >= win_size."
        )
    g = _gaussian_window(win_size, sigma, p.dtype, p.device)
    channels = p.shape[1]

    def blur(x: Tensor) -> Tensor:  # separable Gaussian filter over the valid region: (B, C, H - w + 1, W - w + 1)
        x = torch.nn.functional.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        return torch.nn.functional.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)

    mu_p, mu_r = blur(p), blur(r)
    var_p = blur(p * p) - mu_p**2
    var_r = blur(r * r) - mu_r**2
    cov = blur(p * r) - mu_p * mu_r
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_p * mu_r + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_r**2 + c1) * (var_p + var_r + c2))
    # mean over each channel's valid region, then over channels: (B,)
    return _reduce(ssim_map.flatten(2).mean(2).mean(1).float(), reduction)


def codebook_usage(indices: Tensor, codebook_size: int) -> dict:
    """Usage statistics of code ``indices`` (any shape, all counted together) over ``codebook_size`` codes.

    Args:
        indices (`torch.Tensor`): integer code indices in ``[0, codebook_size)``, any shape, at least one.
        codebook_size (`int`): number of codes K.

    Returns:
        `dict`: ``usage`` (fraction of the K codes used at least once), ``perplexity`` (exp of the entropy of the
        code histogram: K when all codes are used equally, 1 when one code takes everything), ``dead_codes``
        (codes never used) and ``num_tokens``.

    Example:

    >>> import torch
    >>> stats = codebook_usage(torch.tensor([[0, 1], [1, 3]]), codebook_size=4)
    >>> stats["usage"], round(stats["perplexity"], 4), stats["dead_codes"], stats["num_tokens"]
    (0.75, 2.8284, 1, 4)
    """
    if (
        not isinstance(indices, Tensor)
        or indices.dtype.is_floating_point
        or indices.dtype.is_complex
        or indices.dtype == torch.bool
    ):
        raise ValueError(
            f"indices: expected an integer tensor, got {type(indices).__name__} {getattr(indices, 'dtype', '')}."
        )
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or codebook_size < 1:
        raise ValueError(f"codebook_size={codebook_size!r}: expected a positive integer.")
    check_int(codebook_size, "codebook_size", 1, MAX_CODEBOOK_SIZE, "one count per code is allocated")
    flat = indices.reshape(-1).long()
    if flat.numel() == 0:
        raise ValueError(f"indices: expected at least one index, got an empty tensor of shape {tuple(indices.shape)}.")
    check_index_range(flat, codebook_size)
    counts = torch.bincount(flat, minlength=codebook_size)  # (K,)
    return {**usage_statistics(counts), "num_tokens": int(flat.numel())}
