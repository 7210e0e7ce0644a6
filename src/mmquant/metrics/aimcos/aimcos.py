"""LAViTeR's Attribute to Image Matching Cosine Score (AIMCoS, eq. 17) as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/aimcos")``.

A thin wrapper around ``mmquant.metrics.alignment.aimcos``.
"""

import datasets
import evaluate
import torch

from mmquant.metrics.alignment import aimcos

_DESCRIPTION = """AIMCoS (LAViTeR, eq. 17): for each image, the mean cosine similarity between its global feature and
the text feature of each attribute present in it (e.g. the colour and digit words of a Caption MNIST caption, the
attributes of a CUB bird, the class name of a COCO object); then the mean over images."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): the image features, one row per image.
    references (`list[list[int]]`): for each image, the indices of the attributes present in it (at least one).
    attribute_embeds (`list[list[float]]`): the text feature of every attribute, row a for attribute a.
Returns:
    aimcos (`float`): in [-1, 1]; higher means images sit closer to the words of what they show.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/aimcos")  # doctest: +SKIP
    >>> metric.compute(
    ...     predictions=[[1.0, 0.0], [0.0, 1.0]],
    ...     references=[[0], [0, 1]],
    ...     attribute_embeds=[[1.0, 0.0], [0.0, 1.0]],
    ... )  # doctest: +SKIP
    {'aimcos': 0.75}
"""

_CITATION = """@article{shaikh2021laviter,
  title={LAViTeR: Learning Aligned Visual and Textual Representations Assisted by Image and Caption Generation},
  author={Shaikh, Mohammad Abuzar and Ji, Zhanghexuan and Moukheiber, Dana and Srihari, Sargur and Gao, Mingchen},
  journal={arXiv preprint arXiv:2109.04993},
  year={2021}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Aimcos(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, predictions, references, attribute_embeds=None):
        if attribute_embeds is None:
            raise ValueError("attribute_embeds: required, the text feature of every attribute index in references.")
        if len({len(row) for row in predictions}) > 1:
            raise ValueError("predictions: every feature row must have the same size.")
        score = aimcos(
            torch.tensor(predictions, dtype=torch.float64),
            torch.tensor(attribute_embeds, dtype=torch.float64),
            [list(map(int, r)) for r in references],
        )
        return {"aimcos": score}
