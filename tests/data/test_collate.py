"""ImageCaptionCollator: pixel_values / input_ids / attention_mask from image–caption rows, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mmquant.data.collate import ImageCaptionCollator, image_to_tensor
from mmquant.data.tokenizer import train_caption_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_caption_tokenizer(["The red 7 is on the upper left.", "A bird with blue wings."], model_max_length=12)


def _rows(n=3, size=64):
    rng = np.random.default_rng(0)
    return [
        {"image": Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), "caption": "The red 7."}
        for _ in range(n)
    ]


def test_batch_shapes_and_ranges(tokenizer):
    rows = _rows()
    batch = ImageCaptionCollator(tokenizer, image_size=64)(rows)
    assert batch["pixel_values"].shape == (3, 3, 64, 64) and batch["pixel_values"].dtype == torch.float32
    expected = torch.from_numpy(np.array(rows[0]["image"])).permute(2, 0, 1).float() / 255 * 2 - 1
    torch.testing.assert_close(batch["pixel_values"][0], expected)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, 12)
    assert batch["attention_mask"][0].tolist() == [1] * 6 + [0] * 6  # [BOS] the red 7 . [EOS]


def test_resize_grayscale_and_caption_lists(tokenizer):
    rows = [{"image": np.zeros((28, 28), np.uint8), "captions": ["A bird with blue wings.", "The red 7."]}]
    batch = ImageCaptionCollator(tokenizer, image_size=32, padding="longest")(rows)
    assert batch["pixel_values"].shape == (1, 3, 32, 32) and (batch["pixel_values"] == -1).all()
    assert tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True) == "a bird with blue wings."
    chosen = {
        tokenizer.decode(
            ImageCaptionCollator(tokenizer, caption_choice="random", seed=s)(rows)["input_ids"][0],
            skip_special_tokens=True,
        )
        for s in range(10)
    }
    assert chosen == {"a bird with blue wings.", "the red 7."}


def test_tensor_images(tokenizer):
    rows = [{"image": torch.rand(3, 64, 64), "caption": "The red 7."}]
    batch = ImageCaptionCollator(tokenizer)(rows)
    torch.testing.assert_close(batch["pixel_values"][0], rows[0]["image"] * 2 - 1)


@pytest.mark.parametrize(
    ("rows", "kwargs", "error", "message"),
    [
        ([], {}, ValueError, "empty batch"),
        (_rows(1, 48), {"resize": False}, ValueError, r"expected 64x64 pixels, got 48x48"),
        ([{"image": np.zeros((64, 64, 3), np.float32), "caption": "x"}], {}, ValueError, "uint8"),
        ([{"image": torch.full((3, 64, 64), float("nan")), "caption": "x"}], {}, ValueError, "NaN"),
        ([{"image": torch.rand(5, 64, 64), "caption": "x"}], {}, ValueError, r"\(C, H, W\)"),
        ([{"image": np.zeros((64, 64, 3), np.uint8), "caption": ""}], {}, ValueError, "non-empty caption"),
        ([{"image": np.zeros((64, 64, 3), np.uint8), "captions": []}], {}, ValueError, "empty list"),
        ([{"image": np.zeros((64, 64, 3), np.uint8)}], {}, KeyError, "caption"),
        ([{"caption": "x"}], {}, KeyError, "image"),
        ([{"image": np.zeros((64, 64, 3), np.uint8), "caption": "the red 7 " * 5}], {}, ValueError, "max_length=12"),
    ],
)
def test_bad_rows(tokenizer, rows, kwargs, error, message):
    with pytest.raises(error, match=message):
        ImageCaptionCollator(tokenizer, **kwargs)(rows)


def test_truncation_when_asked(tokenizer):
    rows = [{"image": np.zeros((64, 64, 3), np.uint8), "caption": "the red 7 " * 5}]
    batch = ImageCaptionCollator(tokenizer, truncation=True)(rows)
    assert batch["input_ids"].shape == (1, 12) and batch["input_ids"][0, -1] == tokenizer.eos_token_id


def test_image_to_tensor_range_check():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_to_tensor(torch.full((3, 8, 8), 2.0))
