"""PSNR as an evaluate module: ``evaluate.load("path/to/mmquant/metrics/psnr")``."""

import evaluate
import torch

from mmquant.metrics.features import image_pair_features
from mmquant.metrics.functional import psnr

_DESCRIPTION = """Peak signal-to-noise ratio (dB) between reconstructed and reference images, per image
(10 log10(data_range^2 / MSE)), averaged over the images."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: images as nested lists (channels, height, width) or (height, width) of floats.
    references: the reference images, same shapes.
    data_range: span of the pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for bytes). Default 1.0.
Returns:
    psnr: mean over images of the per-image PSNR in dB.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/psnr")  # doctest: +SKIP
    >>> metric.compute(predictions=[[[0.5, 0.5]]], references=[[[0.6, 0.6]]])  # doctest: +SKIP
    {'psnr': 20.0}
"""

_CITATION = """@article{hore2010image,
  title={Image quality metrics: PSNR vs. SSIM},
  author={Hor{\\'e}, Alain and Ziou, Djemel},
  journal={20th International Conference on Pattern Recognition},
  year={2010}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Psnr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=image_pair_features(),
        )

    def _compute(self, predictions, references, data_range: float = 1.0):
        p = torch.tensor(predictions, dtype=torch.float32)
        r = torch.tensor(references, dtype=torch.float32)
        return {"psnr": float(psnr(p, r, data_range=data_range))}
