"""SSIM as an evaluate module: ``evaluate.load("path/to/mmquant/metrics/ssim")``."""

import evaluate
import torch

from mmquant.metrics.features import image_pair_features
from mmquant.metrics.functional import ssim

_DESCRIPTION = """Structural similarity (Wang et al. 2004) between reconstructed and reference images: Gaussian
window (11, sigma 1.5), valid region, population covariances, per channel then averaged, per image then averaged."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: images as nested lists (channels, height, width) or (height, width) of floats.
    references: the reference images, same shapes.
    data_range: span of the pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for bytes). Default 1.0.
    win_size: odd Gaussian window size (default 11); images must be at least this large.
Returns:
    ssim: mean SSIM over the images, in [-1, 1].
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/ssim")  # doctest: +SKIP
    >>> image = [[float(i * j % 7) / 7 for j in range(16)] for i in range(16)]
    >>> metric.compute(predictions=[image], references=[image])  # doctest: +SKIP
    {'ssim': 1.0}
"""

_CITATION = """@article{wang2004image,
  title={Image quality assessment: from error visibility to structural similarity},
  author={Wang, Zhou and Bovik, Alan C and Sheikh, Hamid R and Simoncelli, Eero P},
  journal={IEEE Transactions on Image Processing},
  volume={13}, number={4}, pages={600--612}, year={2004}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ssim(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=image_pair_features(),
        )

    def _compute(self, predictions, references, data_range: float = 1.0, win_size: int = 11):
        p = torch.tensor(predictions, dtype=torch.float32)
        r = torch.tensor(references, dtype=torch.float32)
        return {"ssim": float(ssim(p, r, data_range=data_range, win_size=win_size))}
