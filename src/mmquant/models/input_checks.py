"""Input validation shared by the models' public methods: each check raises a ``ValueError`` (``TypeError`` for a
wrong dtype) that names the argument, what was expected and how to fix it."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_attention_mask",
    "check_batch_sizes",
    "check_code_ids",
    "check_features",
    "check_pixel_values",
    "check_required",
    "check_token_ids",
]


def check_required(**arguments) -> None:
    """Every given argument is not None (a model input that has no default)."""
    for name, value in arguments.items():
        if value is None:
            raise ValueError(f"{name}: required, got None.")


def check_pixel_values(pixel_values: Tensor, channels: int, image_size: int, name: str = "pixel_values") -> None:
    """``(B, channels, image_size, image_size)`` finite floats (images in [-1, 1])."""
    if not isinstance(pixel_values, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(pixel_values).__name__}.")
    expected = (channels, image_size, image_size)
    if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
        raise ValueError(
            f"{name}: expected shape (batch, {', '.join(map(str, expected))}), got {tuple(pixel_values.shape)}; "
            f"give {channels}-channel images resized to {image_size}x{image_size}."
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [-1, 1], got {pixel_values.dtype}.")
    if not torch.isfinite(pixel_values).all():
        raise ValueError(f"{name}: contains NaN or Inf.")


def check_features(features: Tensor, dim: int, name: str) -> None:
    """``(B, dim)`` finite float vectors (e.g. precomputed image features)."""
    if not isinstance(features, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(features).__name__}.")
    if features.ndim != 2 or features.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (batch, {dim}), got {tuple(features.shape)}.")
    if not features.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor, got {features.dtype}.")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name}: contains NaN or Inf.")


def check_token_ids(input_ids: Tensor, max_length: int, vocab_size: int, name: str = "input_ids") -> None:
    """``(B, max_length)`` integer ids in ``[0, vocab_size)`` (captions padded to the model's length)."""
    if not isinstance(input_ids, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(input_ids).__name__}.")
    if input_ids.ndim != 2 or input_ids.shape[1] != max_length:
        raise ValueError(
            f"{name}: expected shape (batch, max_text_length={max_length}), got {tuple(input_ids.shape)}; "
            f"tokenize with padding='max_length', max_length={max_length}."
        )
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected integer token ids, got {input_ids.dtype}.")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
        raise ValueError(
            f"{name}: ids must lie in [0, vocab_size={vocab_size}), got [{int(input_ids.min())}, "
            f"{int(input_ids.max())}]; is this the model's tokenizer?"
        )


def check_attention_mask(attention_mask: Tensor, input_ids: Tensor) -> Tensor:
    """A 0/1 mask of ``input_ids``' shape whose ones come first in each row and number at least one; returns the
    lengths ``(B,)``."""
    if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask: expected a tensor of input_ids' shape {tuple(input_ids.shape)}, got "
            f"{tuple(getattr(attention_mask, 'shape', ())) or type(attention_mask).__name__}."
        )
    mask = attention_mask.long()
    if ((mask != 0) & (mask != 1)).any():
        raise ValueError("attention_mask: expected only 0 and 1.")
    lengths = mask.sum(1)
    if mask.numel() and (lengths < 1).any():
        raise ValueError(f"attention_mask: caption {int((lengths < 1).nonzero()[0])} is empty (no token has mask 1).")
    positions = torch.arange(mask.shape[1], device=mask.device)
    if (mask != (positions[None] < lengths[:, None]).long()).any():
        raise ValueError("attention_mask: expected right padding (ones, then zeros, in every row).")
    return lengths


def check_batch_sizes(**tensors: Tensor | None) -> None:
    """Every given tensor has the same (non-zero) first dimension."""
    sizes = {name: len(t) for name, t in tensors.items() if t is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes differ: {sizes}; give one row per pair.")
    if any(size == 0 for size in sizes.values()):
        raise ValueError(f"empty batch: {sizes}; give at least one example.")


def check_code_ids(ids: Tensor, vocab_size: int, max_length: int, name: str) -> None:
    """``(B, n)`` integer ids in ``[0, vocab_size)`` with ``1 <= n <= max_length`` (a prefix of a code sequence)."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(ids).__name__}.")
    if ids.ndim != 2 or not 1 <= ids.shape[1] <= max_length:
        raise ValueError(f"{name}: expected shape (batch, 1 to {max_length}), got {tuple(ids.shape)}.")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected integer ids, got {ids.dtype}.")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name}: ids must lie in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}].")
