"""Semantic consistency of Caption MNIST image-text pairs (MXQ-VAE Table 2) as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/semantic_consistency")``.

A thin wrapper around ``mmquant.metrics.consistency.semantic_consistency``.
"""

import datasets
import evaluate
import torch

from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.metrics.consistency import load_judge, semantic_consistency
from mmquant.metrics.functional import _nested_to_tensor

_DESCRIPTION = """Semantic consistency of image-text pairs on Caption MNIST (MXQ-VAE, Table 2): a pair is consistent
when its caption, parsed with the Caption MNIST grammar, describes exactly the objects (position, digit, colour) that
a judge network reads in its image. An unparseable caption is inconsistent. The judge is a small CNN trained on
Caption MNIST (mmquant/checkpoints/caption-mnist-judge, ~99.5% of objects read right on the test split)."""

_KWARGS_DESCRIPTION = """
Args:
    images (`list`): the images as nested lists of floats (3, 64, 64) in [-1, 1] (`image_to_tensor(x).tolist()`).
    captions (`list[str]`): one caption per image.
    judge (`str`, `Path` or `CaptionMnistJudgeModel`, optional): the judge; defaults to the one given to
        `evaluate.load(..., judge=...)`, else the judge shipped inside the package
        (mmquant/checkpoints/caption-mnist-judge).
    colors (`list[str]`, defaults to `["white", "red", "green", "blue"]`): the captions' palette.
    single (`bool` or `list[bool]`, optional): the layout (True: one digit filling the canvas); None takes it from
        each caption.
    batch_size (`int`, defaults to 256): canvases per judge forward pass.
Returns:
    consistency (`float`): fraction of consistent pairs.
    object_accuracy (`float`): fraction of the parsed captions' objects that the judge confirms.
    parse_rate (`float`): fraction of captions the grammar parses.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/semantic_consistency")  # doctest: +SKIP
    >>> metric.compute(images=images, captions=captions)  # doctest: +SKIP
    {'consistency': 1.0, 'object_accuracy': 1.0, 'parse_rate': 1.0}
"""

_CITATION = """@inproceedings{lee2022unconditional,
  title={Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
  author={Lee, Hyungyung and Park, Sungjin and Lee, Joonseok and Choi, Edward},
  booktitle={NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
  year={2022}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SemanticConsistency(evaluate.Metric):
    def __init__(self, judge=None, **kwargs):
        super().__init__(**kwargs)
        self._judge_source = judge
        self._judge_model = None

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "images": datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float32")))),
                    "captions": datasets.Value("string"),
                }
            ),
        )

    def _judge(self, judge):
        if judge is not None:
            return load_judge(judge)
        if self._judge_model is None:  # the load-time judge (or the shipped one), loaded once
            self._judge_model = load_judge(self._judge_source)
        return self._judge_model

    def _compute(self, images, captions, judge=None, colors=DEFAULT_COLORS, single=None, batch_size=256):
        pixel_values = _nested_to_tensor(images, "images", torch.float32)
        return semantic_consistency(
            pixel_values, captions, self._judge(judge), colors=colors, single=single, batch_size=batch_size
        )
