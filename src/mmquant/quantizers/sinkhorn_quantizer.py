"""OptVQ: "Preventing Local Pitfalls in Vector Quantization via Optimal Transport" (Zhang et al.,
arXiv:2412.15195; reference code github.com/zbr17/OptVQ).

Codes are assigned by entropic optimal transport between the batch's features and the codebook with uniform
marginals (eq. 8), solved by Sinkhorn-Knopp (eq. 10 and the row/column normalisations), after normalising the
distance matrix (decentering eq. 11, non-negativisation eq. 12). Every code takes part in every batch, so the
codebook is fully used. The assignment runs in float32, without gradient, in scaling-vector form with one N x K
buffer (see :func:`~mmquant.quantizers.sinkhorn_kernel.sinkhorn_assign`); under ``torch.distributed`` the marginals are
global.
"""

import math

from torch import Tensor

from .base import BaseQuantizer
from .functional import SINKHORN_NORMALIZE_MODES, nearest_code
from .sinkhorn_kernel import sinkhorn_assign

__all__ = ["SinkhornQuantizer"]


class SinkhornQuantizer(BaseQuantizer):
    """Vector quantizer with optimal-transport assignment (OptVQ).

    Args:
        epsilon: balance factor of eq. 10 (the reference's default 10).
        n_iters: Sinkhorn iterations (default 5; the paper finds 5 enough to converge, Fig. 9).
        normalize: distance normalisation before Sinkhorn: ``"all"`` = eqs. 11-12 (default, as the reference),
            ``"dim"`` = divide by ``sqrt(codebook_dim)``, ``"none"``.
        sinkhorn_at_inference: keep the Sinkhorn assignment in eval mode. Off by default: Sinkhorn depends on the
            whole batch, so at inference each feature takes its nearest code and a token does not change with
            what else is in the batch.
        **kwargs: the arguments of :class:`~mmquant.quantizers.base.BaseQuantizer` (``dim``, ``codebook_size``,
            ``num_heads``, ``beta``, ``use_affine``, ...).

    Example:
    >>> import torch
    >>> from mmquant.quantizers import SinkhornQuantizer
    >>> q = SinkhornQuantizer(dim=8, codebook_size=64, num_heads=4, use_affine=True)
    >>> out = q(torch.randn(2, 8, 8, 8))
    >>> out.indices.shape
    torch.Size([2, 8, 8, 4])
    """

    def __init__(
        self,
        *args,
        epsilon: float = 10.0,
        n_iters: int = 5,
        normalize: str = "all",
        sinkhorn_at_inference: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if normalize not in SINKHORN_NORMALIZE_MODES:
            raise ValueError(f"normalize={normalize!r}: expected one of {SINKHORN_NORMALIZE_MODES}.")
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"epsilon={epsilon!r}: expected a finite positive number.")
        if not isinstance(n_iters, int) or n_iters < 1:
            raise ValueError(f"n_iters={n_iters!r}: expected an integer >= 1.")
        self.epsilon = float(epsilon)
        self.n_iters = n_iters
        self.normalize = normalize
        self.sinkhorn_at_inference = sinkhorn_at_inference

    def assign(self, z: Tensor, codebook: Tensor) -> Tensor:
        if not (self.training or self.sinkhorn_at_inference):
            return nearest_code(z.detach(), codebook.detach())
        # the features were checked by forward; the codes are the module's own
        return sinkhorn_assign(
            z, codebook, epsilon=self.epsilon, n_iters=self.n_iters, normalize=self.normalize, check_finite=False
        )

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, num_heads={self.num_heads}, "
            f"epsilon={self.epsilon}, n_iters={self.n_iters}, normalize={self.normalize!r}"
        )
