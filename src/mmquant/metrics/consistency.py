"""Caption MNIST metrics of MXQ-VAE (Lee et al., "Unconditional Image-Text Pair Generation with Multimodal Cross
Quantizer"; reference code github.com/ttumyche/MXQ-VAE): the semantic consistency of image-text pairs (Table 2) and
the per-degree caption reconstruction accuracy on the Degree datasets (Table 1).

* :func:`semantic_consistency`: a pair is consistent when the objects its caption describes (parsed with the Caption
  MNIST grammar) are exactly the objects a judge network reads in its image: same set of (position, digit, colour).
* :func:`object_diversity`: how evenly the objects the judge reads in a set of images spread over the (digit, colour)
  classes (a sampling setting can raise consistency by drawing fewer kinds of digit).
* :func:`degree_accuracy`: over the colour and digit slots of each input caption, how often the reconstructed
  caption says the same word, per degree.

The evaluate modules ``semantic_consistency/`` and ``degree_accuracy/`` beside this file are thin wrappers.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..data.caption_grammar import CENTER, CaptionObject, CaptionParseError, parse_caption
from ..data.caption_mnist import DEFAULT_COLORS
from ..resources import checkpoints_dir

__all__ = [
    "DEFAULT_JUDGE_PATH",
    "degree_accuracy",
    "degree_token_accuracy",
    "load_judge",
    "object_diversity",
    "semantic_consistency",
]

# the judge shipped inside the package (package data: mmquant/checkpoints/caption-mnist-judge)
DEFAULT_JUDGE_PATH = checkpoints_dir() / "caption-mnist-judge"


def load_judge(judge=None):
    """A :class:`~mmquant.models.caption_mnist_judge.CaptionMnistJudgeModel` in eval mode from ``judge``: a model
    (returned as is), a local folder or Hub id (``from_pretrained``), or None for the judge shipped in the repository
    (``DEFAULT_JUDGE_PATH``, ``mmquant/checkpoints/caption-mnist-judge`` inside the package)."""
    from ..models.caption_mnist_judge import CaptionMnistJudgeModel

    if isinstance(judge, CaptionMnistJudgeModel):
        return judge
    if judge is None:
        if not (DEFAULT_JUDGE_PATH / "config.json").is_file():
            raise ValueError(
                f"judge=None: the default judge {DEFAULT_JUDGE_PATH} is missing (it ships inside the mmquant "
                "package: reinstall mmquant); pass judge=<folder of a caption_mnist_judge checkpoint> or a "
                "CaptionMnistJudgeModel."
            )
        judge = DEFAULT_JUDGE_PATH
    if not isinstance(judge, (str, Path)):
        raise ValueError(
            f"judge: expected a CaptionMnistJudgeModel, a checkpoint path or None, got {type(judge).__name__}."
        )
    if Path(judge).is_dir() and not (Path(judge) / "config.json").is_file():
        raise ValueError(
            f"judge={str(judge)!r}: the folder has no config.json; expected a caption_mnist_judge checkpoint folder "
            "(written by save_pretrained)."
        )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(judge))
    if not isinstance(model, CaptionMnistJudgeModel):
        raise ValueError(
            f"judge={str(judge)!r}: expected a caption_mnist_judge checkpoint, got a {type(model).__name__}."
        )
    return model.eval()


def _check_strings(name: str, values) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{name}: expected a list of caption strings, got {type(values).__name__}.")
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}]: expected a caption string, got {type(values[bad]).__name__}.")
    return list(values)


def _images_to_tensor(images) -> Tensor:
    """``(N, 3, H, W)`` float in [-1, 1]: a tensor as is, or a sequence of images through ``image_to_tensor``."""
    if isinstance(images, Tensor):
        return images
    if not isinstance(images, Sequence) or isinstance(images, str):
        raise ValueError(
            f"images: expected a (N, 3, H, W) tensor in [-1, 1] or a list of images, got {type(images).__name__}."
        )
    from ..data.collate import image_to_tensor

    return torch.stack([image_to_tensor(image, name=f"images[{i}]") for i, image in enumerate(images)])


def _parse_or_none(caption: str, colors) -> list[CaptionObject] | None:
    try:
        return parse_caption(caption, colors)
    except CaptionParseError:
        return None


def _read_objects(
    judge, pixel_values: Tensor, layouts: list[bool], colors, batch_size: int
) -> list[list[CaptionObject]]:
    """The judge's reading of each canvas, `batch_size` canvases a forward pass (`layouts`: single or not, each)."""
    device = next(judge.parameters()).device
    seen: list[list[CaptionObject]] = []
    for start in range(0, len(pixel_values), batch_size):
        chunk = pixel_values[start : start + batch_size].to(device)
        seen += judge.read_objects(chunk, single=layouts[start : start + batch_size], colors=colors)
    return seen


def semantic_consistency(
    images,
    captions: Sequence[str],
    judge,
    colors: Sequence[str] = DEFAULT_COLORS,
    single: bool | Sequence[bool] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Semantic consistency of image-text pairs on Caption MNIST (MXQ-VAE Table 2), read by a judge network.

    Args:
        images: ``(N, 3, 64, 64)`` float tensor in [-1, 1] (``pixel_values``), or a list of N images as
            ``mmquant.data.collate.image_to_tensor`` takes them (PIL images, ``(H, W, 3)`` uint8 arrays).
        captions: the N captions of the pairs.
        judge: a ``CaptionMnistJudgeModel``, or a checkpoint path for :func:`load_judge`.
        colors: the palette of the captions (their parser accepts only these words); the judge's colour readings are
            restricted to it.
        single: the layout of the images: True (one digit filling the canvas), False (quadrants), one bool per
            pair, or None to take it from each caption (single when it describes a ``"center"`` digit).
        batch_size: canvases per judge forward pass.

    Returns:
        ``consistency``: fraction of pairs whose caption parses and describes exactly the objects the judge reads
        in the image (same set of (position, digit, colour); an unparseable caption is inconsistent).
        ``object_accuracy``: fraction of the objects of the parsed captions that the judge reads at their position
        with their digit and colour (extra objects in the image are not counted here; 0.0 when no caption parses).
        ``parse_rate``: fraction of captions the grammar parses.

    Example:
    >>> import torch
    >>> from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
    >>> judge = CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[4, 4, 4]))  # untrained
    >>> result = semantic_consistency(torch.zeros(2, 3, 64, 64), ["This is red 3.", "no caption"], judge)
    >>> result["parse_rate"]
    0.5
    """
    captions = _check_strings("captions", captions)
    pixel_values = _images_to_tensor(images)
    if len(captions) == 0:
        raise ValueError("captions: expected at least one image-caption pair, got none.")
    if pixel_values.ndim < 1 or pixel_values.shape[0] != len(captions):
        raise ValueError(
            f"images ({tuple(pixel_values.shape)}) and captions ({len(captions)}): expected one image per caption."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer.")
    colors = tuple(colors)
    judge = load_judge(judge)
    parsed = [_parse_or_none(caption, colors) for caption in captions]
    if single is None:
        layouts = [bool(objs) and objs[0].position == CENTER for objs in parsed]
    elif isinstance(single, bool):
        layouts = [single] * len(captions)
    else:
        layouts = list(single)
        if len(layouts) != len(captions) or not all(isinstance(s, bool) for s in layouts):
            raise ValueError(f"single: expected None, a bool or one bool per pair ({len(captions)}).")
    seen = _read_objects(judge, pixel_values, layouts, colors, batch_size)
    consistent = confirmed = described = 0
    for objects, read in zip(parsed, seen):
        if objects is None:
            continue
        read_set = set(read)
        consistent += set(objects) == read_set
        confirmed += sum(obj in read_set for obj in objects)
        described += len(objects)
    n = len(captions)
    return {
        "consistency": consistent / n,
        "object_accuracy": confirmed / described if described else 0.0,
        "parse_rate": sum(p is not None for p in parsed) / n,
    }


def object_diversity(
    images, judge, single: bool, colors: Sequence[str] = DEFAULT_COLORS, batch_size: int = 256
) -> float:
    """The entropy of the (digit, colour) of the objects a judge reads in ``images``, over the log of the number of
    such classes (``10 * len(colors)``): 1.0 when every class is read equally often, 0.0 when one class only (or no
    object at all). ``images`` and ``judge`` as :func:`semantic_consistency` takes them; ``single``: the layout.

    Example:
    >>> from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
    >>> judge = CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[4, 4, 4]))  # untrained
    >>> 0.0 <= object_diversity(torch.zeros(2, 3, 64, 64), judge, single=True) <= 1.0
    True
    """
    import math
    from collections import Counter

    pixel_values, judge, colors = _images_to_tensor(images), load_judge(judge), tuple(colors)
    if not isinstance(single, bool):
        raise TypeError(f"single: expected True or False (one layout for all images), got {single!r}.")
    seen = _read_objects(judge, pixel_values, [single] * len(pixel_values), colors, batch_size)
    counts = Counter((o.digit, o.color) for read in seen for o in read)
    total = sum(counts.values())
    if total == 0:
        return 0.0
    entropy = -sum(n / total * math.log(n / total) for n in counts.values())
    return entropy / math.log(10 * len(colors))


def _as_degree(i: int, value) -> int:
    """An integer degree from an int, a NumPy integer or a one-element integer tensor."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"degrees[{i}]={value!r}: expected an integer.") from None


def degree_accuracy(
    reconstructed_captions: Sequence[str],
    input_captions: Sequence[str],
    degrees: Sequence[int],
    colors: Sequence[str] = DEFAULT_COLORS,
) -> dict[int, float]:
    """Caption reconstruction accuracy per degree on a Degree dataset (MXQ-VAE Table 1).

    Every object of an input caption has two slots, its digit and its colour (by object index, in caption order).
    A slot is right when the reconstructed caption's object of the same index has the same word there. A
    reconstructed caption that does not parse, or describes another number of objects, gets all its slots wrong.
    Positions are not scored. A model whose reconstruction follows the image rather than the text reaches about
    ``degree / K`` on QuadK (1.0, 0.75, 0.5, 0.25, 0.0 on Quad4).

    Args:
        reconstructed_captions: the model's captions, one per input.
        input_captions: the Degree captions given to the model (they must parse).
        degrees: the degree of each input (0 to its number of objects): a list of ints, or an integer array or
            tensor.
        colors: the palette of the captions.

    Returns:
        ``{degree: fraction of right slots over the inputs of that degree}``, degrees in decreasing order.

    Example:
    >>> degree_accuracy(
    ...     ["The 6 on the lower right is blue.", "The 6 on the lower right is red.", "nonsense"],
    ...     ["The 6 on the lower right is blue.", "The 5 on the lower right is red.", "This is red 3."],
    ...     [1, 0, 1],
    ... )
    {1: 0.5, 0: 0.5}
    """
    reconstructed = _check_strings("reconstructed_captions", reconstructed_captions)
    inputs = _check_strings("input_captions", input_captions)
    if isinstance(degrees, (str, bytes)) or not isinstance(degrees, Iterable):
        raise ValueError(f"degrees: expected a list of integers, got {type(degrees).__name__}.")
    degrees = [_as_degree(i, d) for i, d in enumerate(degrees)]
    if not inputs:
        raise ValueError("input_captions: expected at least one caption, got none.")
    if not len(reconstructed) == len(inputs) == len(degrees):
        raise ValueError(
            f"reconstructed_captions ({len(reconstructed)}), input_captions ({len(inputs)}) and degrees "
            f"({len(degrees)}): expected the same length."
        )
    colors = tuple(colors)
    right: dict[int, int] = {}
    total: dict[int, int] = {}
    for i, (text, reference, degree) in enumerate(zip(reconstructed, inputs, degrees)):
        try:
            reference_objects = parse_caption(reference, colors)
        except CaptionParseError as err:
            raise ValueError(f"input_captions[{i}]: not a Caption MNIST caption ({err}).") from err
        if not 0 <= degree <= len(reference_objects):
            raise ValueError(
                f"degrees[{i}]={degree!r}: expected an integer from 0 to the caption's {len(reference_objects)} "
                "objects."
            )
        objects = _parse_or_none(text, colors)
        score = 0
        if objects is not None and len(objects) == len(reference_objects):
            score = sum((o.digit == r.digit) + (o.color == r.color) for o, r in zip(objects, reference_objects))
        right[degree] = right.get(degree, 0) + score
        total[degree] = total.get(degree, 0) + 2 * len(reference_objects)
    return {degree: right[degree] / total[degree] for degree in sorted(total, reverse=True)}


def degree_token_accuracy(
    reconstructed_ids: Tensor,
    input_ids: Tensor,
    degrees: Sequence[int],
    slot_token_ids: Sequence[int],
) -> dict[int, float]:
    """Degree accuracy aligned by token position, for models that reconstruct a caption token by token (MXQ-VAE's
    1-D CNN text decoder predicts the token at every position of the input).

    The slots of a row are the positions where its input caption holds a digit or colour word (``slot_token_ids``,
    e.g. the ids of "0".."9" and the colour words); a slot is right when the reconstructed token at that position
    equals the input's. Unlike :func:`degree_accuracy` it does not need the whole reconstruction to parse, so a
    caption with a wrong template word still scores its digit and colour slots.

    Args:
        reconstructed_ids: ``(N, L)`` reconstructed token ids.
        input_ids: ``(N, L)`` the Degree captions' token ids given to the model.
        degrees: the degree of each row.
        slot_token_ids: token ids that count as slots.

    Returns:
        ``{degree: fraction of right slots over the rows of that degree}``, degrees in decreasing order.

    Example:
    >>> import torch
    >>> reconstructed, given = torch.tensor([[5, 1, 9], [5, 2, 7]]), torch.tensor([[5, 1, 8], [5, 2, 8]])
    >>> degree_token_accuracy(reconstructed, given, degrees=[1, 0], slot_token_ids=[1, 8])
    {1: 0.5, 0: 0.0}
    """
    if reconstructed_ids.shape != input_ids.shape or reconstructed_ids.ndim != 2:
        raise ValueError(
            f"reconstructed_ids and input_ids: expected two (N, L) tensors of one shape, got "
            f"{tuple(reconstructed_ids.shape)} and {tuple(input_ids.shape)}."
        )
    if len(degrees) != len(input_ids):
        raise ValueError(f"degrees: expected {len(input_ids)} values (one per row), got {len(degrees)}.")
    slots = torch.isin(input_ids, torch.as_tensor(list(slot_token_ids), device=input_ids.device))  # (N, L)
    right = (reconstructed_ids == input_ids) & slots
    per_degree: dict[int, list[int]] = {}
    for i, degree in enumerate(degrees):
        total = per_degree.setdefault(_as_degree(i, degree), [0, 0])
        total[0] += int(right[i].sum())
        total[1] += int(slots[i].sum())
    return {d: (r / n if n else 0.0) for d, (r, n) in sorted(per_degree.items(), reverse=True)}
