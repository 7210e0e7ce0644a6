"""The Sinkhorn assignment of OptVQ, written as the paper states it: the readable reference and the test oracle.

OptVQ, "Preventing Local Pitfalls in Vector Quantization via Optimal Transport" (Zhang et al., arXiv:2412.15195;
reference code github.com/zbr17/OptVQ, ``sinkhorn()`` and ``normalize()`` in ``src/optvq/models/quantizer.py``).
Codes are assigned to tokens by entropic optimal transport with uniform marginals (eq. 8), solved by Sinkhorn-Knopp:
start from ``Q = exp(-epsilon * cost)`` (eq. 10) and alternate normalising the columns (each code receives ``1/K``)
and the rows (each token receives ``1/N``), after decentering (eq. 11) and non-negativising (eq. 12) the distances.
Each token then takes the code of its largest plan entry.

This function holds several ``N x K`` tensors and reads them ~45 times; training uses
:func:`~mmquant.quantizers.sinkhorn_kernel.sinkhorn_assign`, the same algorithm in scaling-vector form with one
buffer, which the tests hold to giving this function's argmax.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .functional import check_sinkhorn_args

__all__ = ["sinkhorn"]


@torch.no_grad()
def sinkhorn(x: Tensor, codebook: Tensor, epsilon: float = 10.0, n_iters: int = 5, normalize: str = "all") -> Tensor:
    """Transport plan ``(N, K)`` between features ``x`` ``(N, D)`` and ``codebook`` ``(K, D)``, rows summing to 1.

    ``plan.argmax(1)`` is the OptVQ assignment. Float32, one process, no gradient. Arguments as
    :func:`~mmquant.quantizers.sinkhorn_kernel.sinkhorn_assign`.
    """
    check_sinkhorn_args(x, codebook, epsilon, n_iters, normalize)
    x, codebook = x.detach().float(), codebook.detach().float()
    cost = torch.cdist(x, codebook)  # (N, K) Euclidean distances
    if normalize == "all":
        cost = (cost - cost.mean()) / (cost.std() + 1e-6)  # eq. 11: decentering
        cost = cost - cost.min()  # eq. 12: non-negativisation
    elif normalize == "dim":
        cost = cost / math.sqrt(x.shape[1])
    n, k = cost.shape
    # eq. 10; less the smallest cost (0 after eq. 12), a constant factor that the first division removes and that
    # keeps exp from underflowing to an all-zero plan when the costs are not normalised
    plan = torch.exp(-epsilon * (cost - cost.min()))
    plan /= plan.sum() + 1e-8
    for _ in range(n_iters):
        plan /= plan.sum(0, keepdim=True) + 1e-8  # columns: each code receives mass 1/K
        plan /= k
        plan /= plan.sum(1, keepdim=True) + 1e-8  # rows: each token receives mass 1/N
        plan /= n
    return plan * n  # (N, K), each row a distribution over codes
