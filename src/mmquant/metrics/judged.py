"""Generated Caption MNIST images scored by the judge (a network the generators never train against), as LAViTeR's
text-to-image results are reported beside its own DAMSM-scored R-precision:

* :func:`resize_for_judge`: canvases of any square size, resized to the judge's input size.
* :func:`judge_r_precision`: R-precision where an image ranks its true caption among random others by the judge's
  log-likelihood of each caption's objects (digit and colour per occupied quadrant, "empty" elsewhere), instead of
  by the generator's own encoders.
* :func:`judged_generation`: the judge's object and pair accuracy of images generated from captions, and that
  R-precision, in one call.
* :func:`judged_attributes`: what an object accuracy below 1 is made of: the caption's objects whose place is
  occupied, whose digit or colour is right there, and whose digit or colour there is another object's of the same
  caption (the attributes drawn, but bound to the wrong place).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.caption_grammar import CENTER, QUADRANTS, parse_caption
from ..data.caption_mnist import DEFAULT_COLORS
from .alignment import r_precision
from .consistency import _parse_or_none, load_judge, semantic_consistency

__all__ = [
    "caption_indicators",
    "judge_log_probs",
    "judge_r_precision",
    "judged_attributes",
    "judged_generation",
    "resize_for_judge",
]


def resize_for_judge(pixel_values: Tensor, judge) -> Tensor:
    """``(N, 3, S, S)`` canvases in [-1, 1] -> ``(N, 3, J, J)`` at the judge's ``image_size`` (bilinear, clamped)."""
    size = load_judge(judge).config.image_size
    if pixel_values.ndim != 4 or pixel_values.shape[-1] != pixel_values.shape[-2]:
        raise ValueError(f"pixel_values: expected (N, 3, S, S) canvases, got {tuple(pixel_values.shape)}.")
    if pixel_values.shape[-1] == size:
        return pixel_values
    resized = F.interpolate(pixel_values.float(), size=(size, size), mode="bilinear", align_corners=False)
    return resized.clamp(-1, 1)


@torch.no_grad()
def judge_log_probs(pixel_values: Tensor, judge, colors: Sequence[str] = DEFAULT_COLORS, batch_size: int = 256):
    """``(N, 4 * (11 + len(colors)))``: per quadrant, the judge's digit log-probabilities (0-9, empty) and colour
    log-probabilities (restricted to ``colors``), of canvases at the judge's size."""
    judge = load_judge(judge)
    keep = torch.tensor([judge.config.colors.index(c) for c in colors])
    rows = []
    for start in range(0, len(pixel_values), batch_size):
        digits, hues = judge(pixel_values[start : start + batch_size].to(judge.dtype), return_dict=False)
        digits = digits[:, : len(QUADRANTS)].float().log_softmax(-1)  # (B, 4, 11)
        hues = hues[:, : len(QUADRANTS), keep].float().log_softmax(-1)  # (B, 4, C)
        rows.append(torch.cat([digits, hues], dim=-1).flatten(1))
    return torch.cat(rows)


def caption_indicators(captions: Sequence[str], empty_class: int = 10, colors: Sequence[str] = DEFAULT_COLORS):
    """``(N, 4 * (11 + len(colors)))`` one-hot rows matching :func:`judge_log_probs`: each quadrant's digit (or
    ``empty_class``) and, when occupied, its colour. Captions must parse and describe quadrants."""
    width = empty_class + 1 + len(colors)
    out = torch.zeros(len(captions), len(QUADRANTS), width)
    out[:, :, empty_class] = 1.0
    for i, caption in enumerate(captions):
        for obj in parse_caption(caption, colors):
            if obj.position == CENTER:
                raise ValueError(f"captions[{i}]={caption!r}: judge R-precision scores quadrant layouts only.")
            q = QUADRANTS.index(obj.position)
            out[i, q, empty_class] = 0.0
            out[i, q, obj.digit] = 1.0
            out[i, q, empty_class + 1 + list(colors).index(obj.color)] = 1.0
    return out.flatten(1)


def judge_r_precision(
    pixel_values: Tensor,
    captions: Sequence[str],
    judge,
    num_candidates: int = 100,
    top_k: Sequence[int] = (1, 3),
    seed: int = 0,
    colors: Sequence[str] = DEFAULT_COLORS,
) -> dict[str, float]:
    """R-precision of ``pixel_values[i]`` against ``captions[i]`` (as :func:`~mmquant.metrics.alignment.r_precision`,
    same candidate draw), ranked by the judge's log-likelihood of each candidate caption's objects."""
    judge = load_judge(judge)
    scores = judge_log_probs(resize_for_judge(pixel_values, judge), judge, colors)
    truth = caption_indicators(captions, judge.config.empty_class, colors)
    return r_precision(scores, truth, num_candidates=num_candidates, top_k=top_k, seed=seed, cosine=False)


def judged_generation(
    pixel_values: Tensor, captions: Sequence[str], judge, num_candidates: int = 100, seed: int = 0
) -> dict[str, float]:
    """Images generated from ``captions`` (any square size, [-1, 1]) as the judge reads them: ``object_accuracy``
    (the captions' objects seen at their quadrant with their digit and colour), ``pair_accuracy`` (exactly the
    caption's objects) and ``judge_r_precision@1`` / ``@3`` among ``num_candidates`` captions."""
    judge = load_judge(judge)
    images = resize_for_judge(pixel_values, judge)
    read = semantic_consistency(images, captions, judge, single=False)
    k = min(num_candidates, len(captions))
    ranked = judge_r_precision(images, captions, judge, num_candidates=k, top_k=(1, 3) if k >= 3 else (1,), seed=seed)
    return {
        "object_accuracy": read["object_accuracy"],
        "pair_accuracy": read["consistency"],
        **{f"judge_{name}": v for name, v in ranked.items()},
    }


@torch.no_grad()
def judged_attributes(
    pixel_values: Tensor, captions: Sequence[str], judge=None, colors: Sequence[str] = DEFAULT_COLORS
) -> dict[str, float]:
    """Quadrant-layout images generated from ``captions`` as the judge reads them, attribute by attribute, as
    fractions of the captions' objects: ``place`` (the judge sees an object at its quadrant), ``digit`` / ``color``
    (with its digit / colour), ``digit_from_other`` / ``color_from_other`` (with a wrong digit / colour that another
    object of the same caption has: drawn, but at the wrong place). Unparsed captions count no objects.

    >>> from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
    >>> judge = CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[4, 4, 4]))  # untrained
    >>> sorted(judged_attributes(torch.zeros(1, 3, 64, 64), ["the red 3 is on the upper left."], judge))
    ['color', 'color_from_other', 'digit', 'digit_from_other', 'place']
    """
    judge = load_judge(judge)
    colors = tuple(colors)
    images = resize_for_judge(pixel_values, judge)
    read = judge.read_objects(images.to(judge.dtype), single=False, colors=colors)
    counts = dict.fromkeys(("place", "digit", "color", "digit_from_other", "color_from_other"), 0)
    total = 0
    for caption, seen in zip(captions, read):
        objects = _parse_or_none(caption, colors)
        if objects is None:
            continue
        at = {o.position: o for o in seen}
        for obj in objects:
            total += 1
            got = at.get(obj.position)
            if got is None:
                continue
            others = [o for o in objects if o is not obj]
            counts["place"] += 1
            counts["digit"] += got.digit == obj.digit
            counts["color"] += got.color == obj.color
            counts["digit_from_other"] += got.digit != obj.digit and any(got.digit == o.digit for o in others)
            counts["color_from_other"] += got.color != obj.color and any(got.color == o.color for o in others)
    return {k: v / total if total else 0.0 for k, v in counts.items()}
