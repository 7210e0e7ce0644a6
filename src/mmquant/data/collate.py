"""Turn image–caption rows into model inputs: ``pixel_values`` (B, 3, H, W) float32 in [-1, 1], ``input_ids`` and
``attention_mask`` (B, L) from the shared caption tokenizer.

    collate = ImageCaptionCollator(tokenizer, image_size=64, max_length=48)
    loader = torch.utils.data.DataLoader(dataset["train"], batch_size=64, collate_fn=collate)

Rows hold an image (PIL image, HxWxC uint8 array or (C, H, W) tensor in [0, 1]) and either one ``caption`` or a
list of ``captions`` (Flowers, CUB, COCO: one of them is used, the first or one at random). Images of another size
are resized (bilinear, antialiased) unless ``resize=False``, which makes a wrong size an error; captions longer than
``max_length`` tokens are an error unless ``truncation=True`` (Caption MNIST must never lose a clause silently).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["ImageCaptionCollator", "image_to_tensor"]


def image_to_tensor(image, image_size: int | None = None, resize: bool = True, name: str = "image") -> torch.Tensor:
    """One image as (3, H, W) float32 in [-1, 1], resized to ``image_size`` when given (or checked, with
    ``resize=False``)."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"{name}: expected a (C, H, W) tensor with C in (1, 3), got shape {tuple(image.shape)}.")
        tensor = image.float()
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name}: contains NaN or Inf.")
        if tensor.min() < 0 or tensor.max() > 1:
            raise ValueError(f"{name}: a float image tensor must lie in [0, 1], got [{tensor.min()}, {tensor.max()}].")
    else:
        if hasattr(image, "convert"):  # PIL image
            image = image.convert("RGB")
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or array.dtype != np.uint8:
            raise ValueError(
                f"{name}: expected a PIL image or an (H, W, C) uint8 array with C in (1, 3, 4), got "
                f"{array.dtype} of shape {array.shape}."
            )
        tensor = torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1).float() / 255.0  # (C, H, W) in [0, 1]
    if 0 in tensor.shape[1:]:
        raise ValueError(f"{name}: expected an image with pixels, got {tensor.shape[1]}x{tensor.shape[2]}.")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    if image_size is not None and tuple(tensor.shape[1:]) != (image_size, image_size):
        if not resize:
            raise ValueError(
                f"{name}: expected {image_size}x{image_size} pixels, got {tensor.shape[1]}x{tensor.shape[2]}; resize "
                "the images or pass resize=True."
            )
        tensor = torch.nn.functional.interpolate(
            tensor[None], size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )[0].clamp(0, 1)
    return tensor * 2 - 1


class ImageCaptionCollator:
    """Batch image–caption rows for every model of the zoo (see the module docstring)."""

    def __init__(
        self,
        tokenizer,
        image_size: int | None = 64,
        max_length: int | None = None,
        *,
        image_column: str = "image",
        caption_column: str | None = None,
        caption_choice: str = "first",
        padding: str = "max_length",
        truncation: bool = False,
        resize: bool = True,
        seed: int | None = None,
    ):
        if caption_choice not in ("first", "random"):
            raise ValueError(f"caption_choice={caption_choice!r}: expected 'first' or 'random'.")
        if padding not in ("max_length", "longest"):
            raise ValueError(f"padding={padding!r}: expected 'max_length' or 'longest'.")
        for name, value, low in (("image_size", image_size, 1), ("max_length", max_length, 3)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise ValueError(f"{name}={value!r}: expected None or an integer >= {low}.")
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.max_length = max_length or tokenizer.model_max_length
        self.image_column = image_column
        self.caption_column = caption_column
        self.caption_choice = caption_choice
        self.padding = padding
        self.truncation = truncation
        self.resize = resize
        self._rng = random.Random(seed)

    def _caption(self, row: dict, i: int) -> str:
        column = self.caption_column or ("caption" if "caption" in row else "captions")
        if column not in row:
            raise KeyError(f"examples[{i}]: no {column!r} column (it has {sorted(row)}); set caption_column=.")
        caption = row[column]
        if isinstance(caption, Sequence) and not isinstance(caption, str):
            if not caption:
                raise ValueError(f"examples[{i}][{column!r}]: empty list of captions.")
            caption = caption[0] if self.caption_choice == "first" else self._rng.choice(caption)
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"examples[{i}][{column!r}]: expected a non-empty caption string, got {caption!r}.")
        return caption

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if not isinstance(examples, Sequence) or isinstance(examples, str):
            raise TypeError(f"examples: expected a list of rows (dicts), got {type(examples).__name__}.")
        if not examples:
            raise ValueError("examples: empty batch.")
        images, captions = [], []
        for i, row in enumerate(examples):
            if not isinstance(row, dict):
                raise TypeError(
                    f"examples[{i}]: expected a dict with an image and a caption, got {type(row).__name__}."
                )
            if self.image_column not in row:
                raise KeyError(f"examples[{i}]: no {self.image_column!r} column (it has {sorted(row)}).")
            images.append(image_to_tensor(row[self.image_column], self.image_size, self.resize, f"examples[{i}]"))
            captions.append(self._caption(row, i))
        if len({tuple(t.shape) for t in images}) > 1:
            raise ValueError("examples: images of different sizes; set image_size= to resize them to one size.")
        if not self.truncation:
            lengths = [len(ids) for ids in self.tokenizer(captions)["input_ids"]]
            too_long = [(i, n) for i, n in enumerate(lengths) if n > self.max_length]
            if too_long:
                i, n = too_long[0]
                raise ValueError(
                    f"examples[{i}]: caption has {n} tokens with [BOS]/[EOS], more than max_length={self.max_length}; "
                    "raise max_length or pass truncation=True."
                )
        tokens = self.tokenizer(
            captions,
            padding=self.padding,
            truncation=self.truncation,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {
            "pixel_values": torch.stack(images),  # (B, 3, H, W) in [-1, 1]
            "input_ids": tokens["input_ids"],  # (B, L)
            "attention_mask": tokens["attention_mask"],  # (B, L)
        }
