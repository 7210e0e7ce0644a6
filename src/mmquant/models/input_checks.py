"""Input validation shared by the models' public methods: one checker per kind of input, every model calls it.

The rule, for every check here:

* ``TypeError`` when an argument is not a tensor or has the wrong dtype (a float tensor where integer ids are
  expected, integer images, a list) -- what Python raises for a value of the wrong type;
* ``ValueError`` for a tensor of the right type whose shape, values or range are wrong (and for a missing input);
* each message names the argument, what was expected, what it got, and how to fix it.

Where the checks run: a model's public entry points (``forward``, ``encode_to_indices``, ``get_image_features``,
``generate_*``...) check the user's inputs once, then call private steps (``_encode``...) that check nothing, so a
public call that goes through another public method's work does not check twice, and outputs of the model's own
layers are not re-checked. The value checks (NaN/Inf, id ranges) read one small tensor back from the device per
input (:func:`value_bounds`), not one per condition.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "check_attention_mask",
    "check_batch_sizes",
    "check_code_ids",
    "check_features",
    "check_finite",
    "check_pixel_values",
    "check_required",
    "check_token_ids",
    "value_bounds",
]

_IMAGE_RANGE_SLACK = 0.5  # check_range accepts [-1.5, 1.5]: resampling overshoot, but not bytes in [0, 255]


def check_required(**arguments) -> None:
    """Every given argument is not None (a model input that has no default)."""
    for name, value in arguments.items():
        if value is None:
            raise ValueError(f"{name}: required, got None.")


def value_bounds(values: Tensor) -> tuple[float, float]:
    """``(min, max)`` of ``values`` in one host sync (NaN when any value is NaN); ``(0, 0)`` for an empty tensor."""
    if values.numel() == 0:
        return 0.0, 0.0
    low, high = torch.aminmax(values.detach())
    return tuple(torch.stack([low, high]).double().tolist())


def check_finite(values: Tensor, name: str, hint: str = "") -> tuple[float, float]:
    """``ValueError`` when ``values`` holds NaN or Inf; returns its ``(min, max)`` (one host sync)."""
    low, high = value_bounds(values)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name}: contains NaN or Inf{'; ' + hint if hint else ''}.")
    return low, high


def _type_name(value) -> str:
    return f"a {value.dtype} tensor" if isinstance(value, Tensor) else type(value).__name__


def check_pixel_values(
    pixel_values: Tensor,
    channels: int,
    image_size: int,
    name: str = "pixel_values",
    check_range: bool = False,
) -> None:
    """``(B, channels, image_size, image_size)`` finite floats, images in [-1, 1]; with ``check_range``, values
    outside [-1.5, 1.5] (bytes not mapped to [-1, 1]) are refused too. Float images of any precision are accepted
    (the models cast them to their dtype); an empty batch is accepted (:func:`check_batch_sizes` refuses it where a
    loss needs examples)."""
    expected = f"(batch, {channels}, {image_size}, {image_size})"
    fix = f"give {channels}-channel images resized to {image_size}x{image_size}, values in [-1, 1]"
    if not isinstance(pixel_values, Tensor) or not pixel_values.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor {expected}, got {_type_name(pixel_values)}; {fix}.")
    shape = tuple(pixel_values.shape)
    if pixel_values.ndim != 4:
        raise ValueError(f"{name}: expected shape {expected}, got {shape}; {fix}.")
    if shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channels, got {shape[1]} in shape {shape}; {fix}.")
    if shape[2:] != (image_size, image_size):
        raise ValueError(f"{name}: expected images of {image_size}x{image_size}, got {shape[2]}x{shape[3]}; {fix}.")
    low, high = check_finite(pixel_values, name, fix)
    if check_range and (low < -1 - _IMAGE_RANGE_SLACK or high > 1 + _IMAGE_RANGE_SLACK):
        raise ValueError(
            f"{name}: expected values in [-1, 1], got [{low:.3g}, {high:.3g}]; map bytes with "
            "mmquant.data.collate.image_to_tensor (x / 127.5 - 1)."
        )


def check_features(features: Tensor, dim: int, name: str, hint: str = "") -> None:
    """``(B, dim)`` finite float vectors (e.g. precomputed image features, latents)."""
    if not isinstance(features, Tensor) or not features.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor (batch, {dim}), got {_type_name(features)}.")
    if features.ndim != 2 or features.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (batch, {dim}), got {tuple(features.shape)}.")
    check_finite(features, name, hint)


def _check_ids(ids: Tensor, vocab_size: int, name: str, what: str, hint: str) -> None:
    """Integer ``ids`` in ``[0, vocab_size)`` (one host sync)."""
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected integer {what}, got {ids.dtype}.")
    low, high = value_bounds(ids)
    what_size = f"vocab_size={vocab_size}" if what == "token ids" else vocab_size
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name}: ids must lie in [0, {what_size}), got [{int(low)}, {int(high)}]{hint}.")


def check_token_ids(input_ids: Tensor, max_length: int, vocab_size: int, name: str = "input_ids") -> None:
    """``(B, max_length)`` integer ids in ``[0, vocab_size)`` (captions padded to the model's length)."""
    if not isinstance(input_ids, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of token ids, got {type(input_ids).__name__}.")
    if input_ids.ndim != 2 or input_ids.shape[1] != max_length:
        raise ValueError(
            f"{name}: expected shape (batch, max_text_length={max_length}), got {tuple(input_ids.shape)}; "
            f"tokenize with padding='max_length', max_length={max_length}."
        )
    _check_ids(input_ids, vocab_size, name, "token ids", "; is this the model's tokenizer?")


def check_attention_mask(attention_mask: Tensor, input_ids: Tensor) -> Tensor:
    """A 0/1 mask of ``input_ids``' shape whose ones come first in each row and number at least one; returns the
    lengths ``(B,)``."""
    if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask: expected a tensor of input_ids' shape {tuple(input_ids.shape)}, got "
            f"{tuple(getattr(attention_mask, 'shape', ())) or type(attention_mask).__name__}."
        )
    mask = attention_mask.long()
    lengths = mask.sum(1)
    if mask.numel() == 0:
        return lengths
    positions = torch.arange(mask.shape[1], device=mask.device)
    flags = torch.stack(
        [
            ((mask != 0) & (mask != 1)).any(),
            (lengths < 1).any(),
            (mask != (positions[None] < lengths[:, None]).long()).any(),
            (lengths < 1).long().argmax(),
        ]
    )
    not_binary, empty, not_right_padded, first_empty = flags.tolist()  # one host sync
    if not_binary:
        raise ValueError("attention_mask: expected only 0 and 1.")
    if empty:
        raise ValueError(f"attention_mask: caption {first_empty} is empty (no token has mask 1).")
    if not_right_padded:
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
        raise TypeError(f"{name}: expected a torch.Tensor of code ids, got {type(ids).__name__}.")
    if ids.ndim != 2 or not 1 <= ids.shape[1] <= max_length:
        raise ValueError(f"{name}: expected shape (batch, 1 to {max_length}), got {tuple(ids.shape)}.")
    _check_ids(ids, vocab_size, name, "ids", "")
