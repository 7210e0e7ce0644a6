"""Nearest-neighbour vector quantizer: VQ-VAE, "Neural Discrete Representation Learning" (van den Oord et al.,
arXiv:1711.00937), with the usual training aids (EMA codebook, k-means initialisation, dead-code restart) from
:class:`~mmquant.quantizers.base.BaseQuantizer`.
"""

from torch import Tensor

from .base import BaseQuantizer
from .functional import nearest_code

__all__ = ["VectorQuantizer"]


class VectorQuantizer(BaseQuantizer):
    """Assigns each feature to its nearest code in Euclidean distance (OptVQ eq. 1).

    Takes the arguments of :class:`~mmquant.quantizers.base.BaseQuantizer`.

    Example:
    >>> import torch
    >>> from mmquant.quantizers import VectorQuantizer
    >>> vq = VectorQuantizer(dim=8, codebook_size=32)
    >>> out = vq(torch.randn(2, 16, 8))
    >>> out.quantized.shape, out.indices.shape
    (torch.Size([2, 16, 8]), torch.Size([2, 16]))
    """

    def assign(self, z: Tensor, codebook: Tensor) -> Tensor:
        return nearest_code(z.detach(), codebook.detach())
