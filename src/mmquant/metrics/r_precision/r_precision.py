"""AttnGAN's R-precision of generated images as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/r_precision")``.

A thin wrapper around ``mmquant.metrics.alignment.r_precision``.
"""

import datasets
import evaluate
import torch

from mmquant.metrics.alignment import r_precision

_DESCRIPTION = """R-precision (AttnGAN; LAViTeR Tables 1-3): each image (generated from caption i) ranks its true
caption among num_candidates - 1 random other captions by the cosine of its global feature with each caption's
sentence feature; the percent of images whose true caption is within the top k. Ties count against the model."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): the image features, one row per image.
    references (`list[list[float]]`): the sentence features of the images' captions, row i paired with image i.
    num_candidates (`int`, defaults to 100): captions ranked per image (the true one and random others).
    top_k (`list[int]`, defaults to `[1, 3]`): the k of the reported top-k percents.
    seed (`int`, defaults to 0): the draw of the mismatched captions.
Returns:
    r_precision@<k> (`float`): percent of images whose true caption ranks within the top k.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/r_precision")  # doctest: +SKIP
    >>> metric.compute(
    ...     predictions=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    ...     references=[[1.0, 0.1], [0.1, 1.0], [-1.0, -1.0]],
    ...     num_candidates=3,
    ...     top_k=[1, 3],
    ... )  # doctest: +SKIP
    {'r_precision@1': 66.66666666666666, 'r_precision@3': 100.0}
"""

_CITATION = """@inproceedings{xu2018attngan,
  title={AttnGAN: Fine-Grained Text to Image Generation with Attentional Generative Adversarial Networks},
  author={Xu, Tao and Zhang, Pengchuan and Huang, Qiuyuan and Zhang, Han and Gan, Zhe and Huang, Xiaolei
          and He, Xiaodong},
  booktitle={CVPR},
  year={2018}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RPrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("float32")),
                }
            ),
        )

    def _compute(self, predictions, references, num_candidates=100, top_k=(1, 3), seed=0):
        for name, rows in (("predictions", predictions), ("references", references)):
            if len({len(row) for row in rows}) > 1:
                raise ValueError(f"{name}: every feature row must have the same size.")
        return r_precision(
            torch.tensor(predictions, dtype=torch.float64),
            torch.tensor(references, dtype=torch.float64),
            num_candidates=int(num_candidates),
            top_k=tuple(int(k) for k in top_k),
            seed=int(seed),
        )
