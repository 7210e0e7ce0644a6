"""PSNR as an evaluate module: ``evaluate.load("path/to/mmquant/src/mmquant/metrics/psnr")``.

A thin wrapper around ``mmquant.metrics.functional.psnr``.
"""

import evaluate
import torch

from mmquant.metrics.features import image_pair_features
from mmquant.metrics.functional import _nested_to_tensor, psnr

_DESCRIPTION = """Peak signal-to-noise ratio (dB) between reconstructed and reference images: per image
10 log10(data_range^2 / MSE) with the MSE over all its pixels, then the mean over the images. An image identical to
its reference gives +inf (and so does the mean)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list`): images as nested lists of floats, (channels, height, width) or (height, width), all of
        one shape.
    references (`list`): the reference images, same shapes.
    data_range (`float`, defaults to 1.0): span of the pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for
        bytes).
Returns:
    psnr (`float`): mean over the images of the per-image PSNR in dB; +inf if any image equals its reference.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/psnr")  # doctest: +SKIP
    >>> metric.compute(predictions=[[[128.0, 128.0]]], references=[[[153.5, 153.5]]], data_range=255)  # doctest: +SKIP
    {'psnr': 20.0}
"""

_CITATION = """@inproceedings{hore2010image,
  title={Image quality metrics: PSNR vs. SSIM},
  author={Hor{\\'e}, Alain and Ziou, Djemel},
  booktitle={20th International Conference on Pattern Recognition},
  pages={2366--2369},
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
        p = _nested_to_tensor(predictions, "predictions", torch.float32)
        r = _nested_to_tensor(references, "references", torch.float32)
        return {"psnr": float(psnr(p, r, data_range=data_range))}
