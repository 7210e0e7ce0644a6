"""SSIM as an evaluate module: ``evaluate.load("path/to/mmquant/src/mmquant/metrics/ssim")``.

A thin wrapper around ``mmquant.metrics.functional.ssim``.
"""

import evaluate
import torch

from mmquant.metrics.features import image_pair_features
from mmquant.metrics.functional import _nested_to_tensor, ssim

_DESCRIPTION = """Structural similarity (Wang et al. 2004) between reconstructed and reference images: Gaussian window
(11 taps, sigma 1.5), population (co)variances, averaged over the valid region (no padding), per channel then
averaged, per image then averaged. Matches skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=data_range)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list`): images as nested lists of floats, (channels, height, width) or (height, width), all of
        one shape, at least `win_size` pixels high and wide.
    references (`list`): the reference images, same shapes.
    data_range (`float`, defaults to 1.0): span of the pixel values (1.0 for [0, 1], 2.0 for [-1, 1], 255 for
        bytes).
    win_size (`int`, defaults to 11): odd side of the Gaussian window.
    sigma (`float`, defaults to 1.5): standard deviation of the Gaussian window.
    k1 (`float`, defaults to 0.01): C1 = (k1 * data_range)^2.
    k2 (`float`, defaults to 0.03): C2 = (k2 * data_range)^2.
Returns:
    ssim (`float`): mean SSIM over the images, in [-1, 1]; 1 for identical images.
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

    def _compute(
        self,
        predictions,
        references,
        data_range: float = 1.0,
        win_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
    ):
        p = _nested_to_tensor(predictions, "predictions", torch.float32)
        r = _nested_to_tensor(references, "references", torch.float32)
        score = ssim(p, r, data_range=data_range, win_size=win_size, sigma=sigma, k1=k1, k2=k2)
        return {"ssim": float(score)}
