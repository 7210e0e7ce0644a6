"""The network-free layout reading of quadrant canvases (LAViTeR's regression probe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmquant.data.caption_mnist import generate_caption_mnist
from mmquant.data.collate import image_to_tensor
from mmquant.metrics.layout import quadrant_layout_accuracy


def _pairs(n: int, objects: int):
    pairs = list(generate_caption_mnist("test", n, objects, single=False, seed=3))
    images = torch.stack([image_to_tensor(np.ascontiguousarray(p["image"]), 64, resize=False) for p in pairs])
    return images, [p["caption"] for p in pairs]


def test_real_canvases_read_right_and_wrong_captions_do_not():
    images, captions = _pairs(40, 2)
    assert quadrant_layout_accuracy(images, captions) == {"place": 1.0, "color": 1.0}
    assert quadrant_layout_accuracy(images.flip(-1), captions)["place"] < 0.8  # left and right exchanged
    shuffled = quadrant_layout_accuracy(images, captions[1:] + captions[:1])
    assert shuffled["place"] < 0.8 and shuffled["color"] < 0.8
    # a blurred canvas (what a regression draws) keeps its places and nearly all its colours (a digit at a border
    # bleeds into its neighbour)
    blurred = quadrant_layout_accuracy(torch.nn.functional.avg_pool2d(images, 5, stride=1, padding=2), captions)
    assert blurred["place"] == 1.0 and blurred["color"] >= 0.95


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\) images, one caption each"):
        quadrant_layout_accuracy(torch.zeros(2, 1, 8, 8), ["a", "b"])
