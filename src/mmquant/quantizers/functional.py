"""Pure functions shared by every quantizer: distances, nearest-code and Sinkhorn assignment, usage statistics.

The Sinkhorn assignment implements OptVQ, "Preventing Local Pitfalls in Vector Quantization via Optimal
Transport" (Zhang et al., arXiv:2412.15195; reference code github.com/zbr17/OptVQ), Sec. 3.2-3.3 and Algorithm 1,
in scaling-vector form (see ``../shared/prototypes/sinkhorn_scaling.py`` for the derivation):

* The reference normalises the cost as ``((D - mean) / std) - min`` (eqs. 11-12) and starts from
  ``Q = exp(-epsilon * cost)`` (eq. 10). The two shifts multiply ``Q`` by a constant that the first division by
  the total removes, so only ``lam = epsilon / (std(D) + 1e-6)`` matters.
* With ``M = exp(-lam * (D - rowmin D))`` the plan is ``diag(a) M diag(b)``; the row/column normalisations of
  the reference (with its ``+1e-8`` guards) become updates of the vectors ``a`` (tokens) and ``b`` (codes).
* The final argmax over codes of ``P[n, k]`` equals ``argmax_k M[n, k] b_k``, so the last token update is skipped.

The N x K matrix is held once (one buffer) and visited in row blocks: each block's distance, statistics,
exponential, matrix-vector products and the next iteration's column sums are computed while the block is in
cache, so one Sinkhorn iteration streams the buffer once. When N x K exceeds ``max_buffer_elements`` no buffer is
kept at all and each pass recomputes its blocks (chunked mode). Under ``torch.distributed`` the statistics, the
column sums and the token count are all-reduced, so the marginals are global: a run on several processes gives
the assignment of one process holding the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "SINKHORN_NORMALIZE_MODES",
    "code_usage_and_perplexity",
    "euclidean_distances",
    "is_distributed",
    "nearest_code",
    "sinkhorn_assign",
    "sinkhorn_plan",
]

SINKHORN_NORMALIZE_MODES = ("all", "dim", "none")
# Blocks of about 1 MiB of float32 stay in the L2 cache of current CPUs while they are worked on.
_DEFAULT_BLOCK_ELEMENTS = 1 << 18
# Past 256 Mi elements (1 GiB of float32) the matrix is not kept but recomputed block by block.
_DEFAULT_MAX_BUFFER_ELEMENTS = 1 << 28


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def euclidean_distances(x: Tensor, codebook: Tensor, out: Tensor | None = None) -> Tensor:
    """Euclidean distances ``||x_n - c_k||`` as one ``(N, K)`` matrix, computed with ``addmm`` (not ``cdist``).

    Args:
        x: ``(N, D)`` features.
        codebook: ``(K, D)`` code vectors.
        out: optional ``(N, K)`` buffer to write into.
    """
    squared = torch.addmm((codebook * codebook).sum(1), x, codebook.t(), beta=1, alpha=-2, out=out)
    return squared.add_((x * x).sum(1, keepdim=True)).clamp_(min=0).sqrt_()


def nearest_code(x: Tensor, codebook: Tensor, block_rows: int | None = None) -> Tensor:
    """Index of the nearest code (eq. 1) for each row of ``x`` ``(N, D)``; ``(N,)`` int64.

    Uses squared distances without the constant ``||x||^2`` term, in row blocks of at most ``block_rows``.
    """
    n, k = x.shape[0], codebook.shape[0]
    block_rows = block_rows or max(1, _DEFAULT_MAX_BUFFER_ELEMENTS // (4 * max(k, 1)))
    c_sq = (codebook * codebook).sum(1)
    out = torch.empty(n, dtype=torch.long, device=x.device)
    for s in range(0, n, block_rows):
        e = min(n, s + block_rows)
        out[s:e] = torch.addmm(c_sq, x[s:e], codebook.t(), beta=1, alpha=-2).argmin(1)
    return out


def code_usage_and_perplexity(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Fraction of codes used at least once, and the perplexity ``exp(H(p))`` of the code histogram ``counts``."""
    counts = counts.float()
    total = counts.sum()
    usage = (counts > 0).float().mean()
    p = counts / total.clamp(min=1)
    entropy = -(p * torch.log(p.clamp(min=1e-10))).sum()
    return usage, torch.exp(entropy)


def _all_reduce(t: Tensor, op=None) -> Tensor:
    dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


def _check_sinkhorn_args(x: Tensor, codebook: Tensor, epsilon: float, n_iters: int, normalize: str) -> None:
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"sinkhorn: expected x (N, D) and codebook (K, D) with the same D, got x {tuple(x.shape)} and "
            f"codebook {tuple(codebook.shape)}."
        )
    if normalize not in SINKHORN_NORMALIZE_MODES:
        raise ValueError(f"sinkhorn: normalize={normalize!r}, expected one of {SINKHORN_NORMALIZE_MODES}.")
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"sinkhorn: epsilon={epsilon!r}, expected a finite positive number.")
    if n_iters < 1:
        raise ValueError(f"sinkhorn: n_iters={n_iters!r}, expected an integer >= 1.")


class _Kernel:
    """The kernel ``M = exp(-lam (D - rowmin D))`` visited in row blocks, kept in one buffer or recomputed."""

    def __init__(self, x: Tensor, codebook: Tensor, block_rows: int, keep: bool):
        self.x, self.codebook = x, codebook
        n, k = x.shape[0], codebook.shape[0]
        self.blocks = [(s, min(n, s + block_rows)) for s in range(0, n, block_rows)]
        self.buffer = torch.empty(n, k, dtype=x.dtype, device=x.device) if keep else None
        self.lam = 1.0
        self.rowmin = torch.empty(n, dtype=x.dtype, device=x.device)

    def distances(self, s: int, e: int) -> Tensor:
        out = None if self.buffer is None else self.buffer[s:e]
        return euclidean_distances(self.x[s:e], self.codebook, out=out)

    def kernel(self, s: int, e: int) -> Tensor:
        """Block ``s:e`` of ``M``; in buffered mode it was written by ``exponentiate``."""
        if self.buffer is not None:
            return self.buffer[s:e]
        d = self.distances(s, e)
        return d.sub_(self.rowmin[s:e, None]).mul_(-self.lam).exp_()


def _distance_statistics(kern: _Kernel, normalize: str, distributed: bool) -> tuple[float, Tensor]:
    """First pass: distances and their row minima; returns the scale of ``lam`` and the row minima.

    For ``normalize="all"`` the scale is ``1 / (std(D) + 1e-6)`` (eq. 11 decentering), the std taken over all of D
    (and over all processes) from per-block sums and sums of squares accumulated in float64.
    """
    dim = kern.x.shape[1]
    sums = torch.zeros(3, dtype=torch.float64, device=kern.x.device)  # count, sum D, sum D^2
    for s, e in kern.blocks:
        d = kern.distances(s, e)
        torch.amin(d, 1, out=kern.rowmin[s:e])
        if normalize == "all":
            flat = d.view(-1)
            sums[0] += flat.numel()
            sums[1] += flat.sum(dtype=torch.float64)
            sums[2] += torch.dot(flat, flat).double()
    if normalize == "dim":
        return 1.0 / math.sqrt(dim), kern.rowmin
    if normalize == "none":
        return 1.0, kern.rowmin
    if distributed:
        _all_reduce(sums)
    count, total, total_sq = sums.tolist()
    var = max(total_sq - total * total / max(count, 1.0), 0.0) / max(count - 1.0, 1.0)  # unbiased, as torch.std
    return 1.0 / (math.sqrt(var) + 1e-6), kern.rowmin


def _run_sinkhorn(
    x: Tensor,
    codebook: Tensor,
    epsilon: float,
    n_iters: int,
    normalize: str,
    block_rows: int | None,
    max_buffer_elements: int | None,
    distributed: bool | None,
    want_plan: bool,
) -> tuple[_Kernel, Tensor, Tensor, int]:
    _check_sinkhorn_args(x, codebook, epsilon, n_iters, normalize)
    distributed = is_distributed() if distributed is None else distributed
    x, codebook = x.detach().float().contiguous(), codebook.detach().float().contiguous()
    n, k = x.shape[0], codebook.shape[0]
    block_rows = block_rows or max(1, _DEFAULT_BLOCK_ELEMENTS // max(k, 1))
    max_buffer_elements = max_buffer_elements or _DEFAULT_MAX_BUFFER_ELEMENTS
    keep = want_plan or n * k <= max_buffer_elements
    kern = _Kernel(x, codebook, block_rows, keep)

    scale, rowmin = _distance_statistics(kern, normalize, distributed)
    kern.lam = lam = epsilon * scale  # eq. 10 with the eq. 11-12 normalisation folded into lam
    n_global = n
    global_min = rowmin.min() if n > 0 else torch.zeros((), device=x.device)
    if distributed:
        n_global = int(_all_reduce(torch.tensor(float(n), dtype=torch.float64, device=x.device)).item())
        global_min = _all_reduce(global_min.clone(), dist.ReduceOp.MIN)
    # row factors taken out of M and kept in a: exp(-lam D) = r_n * M_nk * exp(-lam * global_min)
    a = torch.exp(-lam * (rowmin - global_min))

    # second pass: M in place of D, and the column sums of diag(a) M
    col = torch.zeros(k, dtype=x.dtype, device=x.device)
    for s, e in kern.blocks:
        if kern.buffer is not None:
            kern.buffer[s:e].sub_(rowmin[s:e, None]).mul_(-lam).exp_()
        col.addmv_(kern.kernel(s, e).t(), a[s:e])
    if distributed:
        _all_reduce(col)
    total = col.sum() + 1e-8  # the reference's "Q /= sum(Q)"
    a, col = a / total, col / total
    b = torch.ones(k, dtype=x.dtype, device=x.device)
    for i in range(n_iters):
        b = b / (b * col + 1e-8) / k  # each code receives mass 1/K
        if i == n_iters - 1 and not want_plan:
            break
        # one fused pass: token update of each block, then that block's share of the next column sums
        col = torch.zeros_like(col)
        for s, e in kern.blocks:
            m = kern.kernel(s, e)
            a_blk = a[s:e]
            a_blk.div_(a_blk * torch.mv(m, b) + 1e-8).div_(n_global)  # each token receives mass 1/N
            col.addmv_(m.t(), a_blk)
        if distributed:
            _all_reduce(col)
    return kern, a, b, n_global


@torch.no_grad()
def sinkhorn_assign(
    x: Tensor,
    codebook: Tensor,
    epsilon: float = 10.0,
    n_iters: int = 5,
    normalize: str = "all",
    block_rows: int | None = None,
    max_buffer_elements: int | None = None,
    distributed: bool | None = None,
) -> Tensor:
    """OptVQ assignment (eqs. 8-12): entropic optimal transport between tokens and codes, then argmax per token.

    Computed in float32 whatever the input dtype or autocast state; no gradient flows through it.

    Args:
        x: ``(N, D)`` features (only the tokens that take part: drop padding first).
        codebook: ``(K, D)`` code vectors.
        epsilon: the balance factor of eq. 10 (reference default 10).
        n_iters: Sinkhorn iterations (reference default 5).
        normalize: ``"all"`` = decentering and non-negativisation of the distance matrix (eqs. 11-12, the
            reference's ``normalize_mode="all"``); ``"dim"`` divides distances by ``sqrt(D)``; ``"none"`` uses them raw.
        block_rows: rows per block (default: about 1 MiB per block).
        max_buffer_elements: above this N*K no N x K buffer is kept; blocks are recomputed in each pass.
        distributed: all-reduce the sums over the default process group (default: when one is active).

    Returns:
        ``(N,)`` int64 code indices.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        kern, _, b, _ = _run_sinkhorn(
            x, codebook, epsilon, n_iters, normalize, block_rows, max_buffer_elements, distributed, want_plan=False
        )
        out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
        scratch = None
        for s, e in kern.blocks:
            m = kern.kernel(s, e)
            scratch = torch.mul(m, b, out=scratch if scratch is not None and scratch.shape == m.shape else None)
            torch.argmax(scratch, 1, out=out[s:e])
    return out


@torch.no_grad()
def sinkhorn_plan(
    x: Tensor,
    codebook: Tensor,
    epsilon: float = 10.0,
    n_iters: int = 5,
    normalize: str = "all",
    distributed: bool | None = None,
) -> Tensor:
    """The full transport plan ``P`` ``(N, K)`` after ``n_iters`` iterations, scaled so each row sums to 1.

    Equal to the reference ``sinkhorn()`` output. Materialises N x K; meant for analysis and tests, not training.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        kern, a, b, n_global = _run_sinkhorn(
            x, codebook, epsilon, n_iters, normalize, None, None, distributed, want_plan=True
        )
        return kern.buffer.mul_(a[:, None] * n_global).mul_(b)
