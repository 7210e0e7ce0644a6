"""The shared input checker (``mmquant.models.input_checks``): one rule for the exception types, messages that name
the argument and the fix, and one check of each input per public call."""

from __future__ import annotations

import pytest
import torch

import mmquant
from mmquant.models import input_checks
from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
from mmquant.models.input_checks import (
    check_attention_mask,
    check_features,
    check_pixel_values,
    check_token_ids,
    value_bounds,
)


@pytest.mark.parametrize(
    "value, error, match",
    [
        ([[0.0]], TypeError, r"pixel_values: expected a floating-point tensor \(batch, 3, 8, 8\), got list"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "got a torch.uint8 tensor"),
        (torch.zeros(3, 8, 8), ValueError, r"expected shape \(batch, 3, 8, 8\), got \(3, 8, 8\)"),
        (torch.zeros(1, 1, 8, 8), ValueError, "expected 3 channels, got 1"),
        (torch.zeros(1, 3, 4, 8), ValueError, "expected images of 8x8, got 4x8"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "contains NaN or Inf"),
        (torch.full((1, 3, 8, 8), float("-inf")), ValueError, "contains NaN or Inf"),
    ],
)
def test_pixel_values_rule_type_error_for_types_value_error_for_values(value, error, match):
    with pytest.raises(error, match=match) as raised:
        check_pixel_values(value, 3, 8)
    message = str(raised.value)
    assert message.startswith("pixel_values: ")  # names the argument
    assert "give 3-channel images resized to 8x8, values in [-1, 1]" in message  # and the fix


def test_pixel_values_range_and_empty_batch():
    check_pixel_values(torch.zeros(0, 3, 8, 8), 3, 8)  # an empty batch is a shape, not an error here
    check_pixel_values(torch.full((1, 3, 8, 8), 255.0), 3, 8)  # the range is checked only where asked
    with pytest.raises(ValueError, match=r"images: expected values in \[-1, 1\], got \[0, 255\]"):
        check_pixel_values(torch.full((1, 3, 8, 8), 255.0).index_fill(3, torch.tensor([0]), 0), 3, 8, "images", True)


def test_ids_features_and_mask_follow_the_same_rule():
    with pytest.raises(TypeError, match="input_ids: expected integer token ids, got torch.float32"):
        check_token_ids(torch.zeros(2, 5), 5, 10)
    with pytest.raises(TypeError, match="input_ids: expected a torch.Tensor"):
        check_token_ids([[1, 2]], 2, 10)
    with pytest.raises(ValueError, match=r"input_ids: ids must lie in \[0, vocab_size=10\), got \[0, 12\]"):
        check_token_ids(torch.tensor([[0, 12]]), 2, 10)
    with pytest.raises(TypeError, match=r"latents: expected a float tensor \(batch, 4\), got a torch.int64 tensor"):
        check_features(torch.zeros(2, 4, dtype=torch.long), 4, "latents")
    with pytest.raises(ValueError, match="latents: contains NaN or Inf; lower the learning rate"):
        check_features(torch.full((2, 4), float("nan")), 4, "latents", "lower the learning rate")
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="attention_mask: expected only 0 and 1"):
        check_attention_mask(torch.full((2, 3), 2), ids)
    with pytest.raises(ValueError, match="attention_mask: caption 1 is empty"):
        check_attention_mask(torch.tensor([[1, 0, 0], [0, 0, 0]]), ids)
    with pytest.raises(ValueError, match="right padding"):
        check_attention_mask(torch.tensor([[0, 1, 1], [1, 0, 0]]), ids)
    assert check_attention_mask(torch.tensor([[1, 1, 0], [1, 0, 0]]), ids).tolist() == [2, 1]


def test_value_bounds_is_one_reading_of_min_and_max():
    x = torch.tensor([[0.5, -2.0], [3.0, 1.0]])
    assert value_bounds(x) == (-2.0, 3.0)
    assert value_bounds(torch.zeros(0, 3)) == (0.0, 0.0)
    low, high = value_bounds(x.index_fill(1, torch.tensor([0]), float("nan")))
    assert low != low and high != high  # NaN propagates to both bounds, so check_finite sees it


@pytest.fixture
def count_value_checks(monkeypatch):
    """The number of value checks (one host sync each) made by the shared checker during a call."""
    calls = []
    real = input_checks.value_bounds

    def counted(values):
        calls.append(tuple(values.shape))
        return real(values)

    monkeypatch.setattr(input_checks, "value_bounds", counted)
    return calls


def test_optvq_public_calls_check_the_images_once(count_value_checks):
    model = mmquant.create_model("test").eval()
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    for call in (model, model.encode, model.encode_to_indices):
        count_value_checks.clear()
        call(images)
        assert count_value_checks == [(2, 3, 16, 16)], call  # the images, once; not the model's own latents
    count_value_checks.clear()
    model.decode(model.quantize(model.encode(images)).quantized)  # each public step checks its own input
    assert count_value_checks == [(2, 3, 16, 16), (2, 8, 4, 4), (2, 8, 4, 4)]


def test_judge_forward_checks_the_canvases_once(count_value_checks):
    judge = CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[4, 4, 4])).eval()
    judge(torch.zeros(2, 3, 64, 64))
    assert count_value_checks == [(2, 3, 64, 64)]  # not the crops it classifies
