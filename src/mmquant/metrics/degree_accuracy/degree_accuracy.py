"""Per-degree caption reconstruction accuracy on the Caption MNIST Degree datasets (MXQ-VAE Table 1) as an evaluate
module: ``evaluate.load("path/to/mmquant/src/mmquant/metrics/degree_accuracy")``.

A thin wrapper around ``mmquant.metrics.consistency.degree_accuracy``.
"""

import datasets
import evaluate

from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.metrics.consistency import degree_accuracy

_DESCRIPTION = """Multimodal semantic correlation on a Degree dataset (MXQ-VAE, Table 1): over the digit and colour
slots of each input caption (object by object, in caption order), the fraction that the reconstructed caption says
the same, per degree. A reconstructed caption that does not parse, or describes another number of objects, gets all
its slots wrong. A model that reconstructs the caption from the image reaches about degree / K on QuadK."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the reconstructed captions.
    references (`list[str]`): the input (Degree) captions, which must parse.
    degrees (`list[int]`): the degree of each input, 0 to its number of objects.
    colors (`list[str]`, defaults to `["white", "red", "green", "blue"]`): the captions' palette.
Returns:
    degree_<d> (`float`): for each degree d present, the fraction of right slots, in decreasing order of d.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/degree_accuracy")  # doctest: +SKIP
    >>> metric.compute(
    ...     predictions=["The 6 on the lower right is blue.", "The 6 on the lower right is red."],
    ...     references=["The 6 on the lower right is blue.", "The 5 on the lower right is red."],
    ...     degrees=[1, 0],
    ... )  # doctest: +SKIP
    {'degree_1': 1.0, 'degree_0': 0.5}
"""

_CITATION = """@inproceedings{lee2022unconditional,
  title={Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
  author={Lee, Hyungyung and Park, Sungjin and Lee, Joonseok and Choi, Edward},
  booktitle={NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
  year={2022}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DegreeAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Value("string"),
                    "degrees": datasets.Value("int32"),
                }
            ),
        )

    def _compute(self, predictions, references, degrees, colors=DEFAULT_COLORS):
        per_degree = degree_accuracy(predictions, references, [int(d) for d in degrees], colors=colors)
        return {f"degree_{degree}": accuracy for degree, accuracy in per_degree.items()}
