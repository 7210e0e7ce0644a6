"""Pure functions shared by every quantizer: distances, nearest-code assignment, input checks, usage statistics.

The Sinkhorn (OptVQ) assignment has two files of its own: ``sinkhorn.py``, the algorithm as the paper writes it (the
readable reference and test oracle), and ``sinkhorn_kernel.py``, the fast version used in training.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .sinkhorn_native import max_magnitude

__all__ = [
    "MAX_FEATURE_MAGNITUDE",
    "SINKHORN_NORMALIZE_MODES",
    "check_features",
    "check_index_range",
    "code_usage_and_perplexity",
    "euclidean_distances",
    "is_distributed",
    "nearest_code",
    "rotation_trick",
    "straight_through",
    "vq_losses",
    "check_sinkhorn_args",
    "usage_statistics",
]

SINKHORN_NORMALIZE_MODES = ("all", "dim", "none")
# The largest feature or code magnitude the quantizers accept. Distances and losses are computed in float32 (max
# ~3.4e38) from squared values: at 1e12 a squared difference is at most 4e24 per channel, so a row of a million
# channels and a mean over 1e8 rows stay finite. Finite but larger inputs (say 1e30) would overflow to inf distances
# (every token taking code 0) and an inf loss; they are refused instead.
MAX_FEATURE_MAGNITUDE = 1e12
# Row blocks of 8 MiB of float32: a block stays in cache (L2/L3) between the few operations applied to it, and there
# are few blocks, so few operations: each costs a few microseconds of overhead and is one OpenMP parallel region that
# waits for all its threads (slow when other processes compete for the cores). 2-16 MiB were within ~5% of each
# other on an idle 2-core machine, 8 MiB the fastest.
_DEFAULT_BLOCK_ELEMENTS = 1 << 21
# On a GPU there is no cache to fit and each block costs a handful of kernel launches (~5-10 us each). With 8 MiB
# blocks one 4-head OptVQ training step at K = 16384 (64 blocks per head and pass) took 0.12 s on an H200 (not
# profiled; the launches are the likely cause). Blocks of 256 MiB leave a few per call.
_DEVICE_BLOCK_ELEMENTS = 1 << 26


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _cdist_operands(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """``[-2x, |x|^2, 1]`` and ``[c, 1, |c|^2]``: their product is the matrix of squared distances.

    This is the matrix-product form ``torch.cdist`` itself uses for p=2 (ATen ``_euclidean_dist``), so the distances
    below round like those of ``torch.cdist``, which the reference OptVQ code uses.
    """
    n, d = x.shape
    xa = x.new_empty(n, d + 2)  # written in place: no concatenation copies
    torch.mul(x, -2, out=xa[:, :d])
    torch.sum(x.pow(2), -1, out=xa[:, d])
    xa[:, d + 1] = 1
    return xa, _code_operand(codebook)


def _code_operand(codebook: Tensor) -> Tensor:
    """``[c, 1, |c|^2]``, the codes' half of :func:`_cdist_operands`."""
    k, d = codebook.shape
    ca = codebook.new_empty(k, d + 2)
    ca[:, :d] = codebook
    ca[:, d] = 1
    torch.sum(codebook.pow(2), -1, out=ca[:, d + 1])
    return ca


def _distances_into(xa: Tensor, ca: Tensor, out: Tensor) -> Tensor:
    """Distances between the rows behind ``xa`` and the codes behind ``ca`` (``_cdist_operands``), into ``out``."""
    torch.mm(xa, ca.t(), out=out)
    return out.clamp_min_(1e-30).sqrt_()


def euclidean_distances(x: Tensor, codebook: Tensor, out: Tensor | None = None) -> Tensor:
    """Euclidean distances ``||x_n - c_k||`` as one ``(N, K)`` matrix, computed like ``torch.cdist`` (one matmul).

    Args:
        x: ``(N, D)`` features.
        codebook: ``(K, D)`` code vectors.
        out: optional ``(N, K)`` buffer to write into.
    """
    xa, ca = _cdist_operands(x, codebook)
    if out is None:
        out = torch.empty(x.shape[0], codebook.shape[0], dtype=xa.dtype, device=x.device)
    return _distances_into(xa, ca, out)


def _default_block_rows(k: int, device: torch.device, cpu_elements: int = _DEFAULT_BLOCK_ELEMENTS) -> int:
    """Rows per block of an N x ``k`` float32 matrix on ``device``: ``cpu_elements`` entries (~8 MiB by default) on
    the CPU, ~256 MiB elsewhere."""
    elements = cpu_elements if device.type == "cpu" else _DEVICE_BLOCK_ELEMENTS
    return max(1, elements // max(k, 1))


class _RowArg:
    """Index of the max (or min) of each row of float32 blocks ``(r, K)``, first index on ties, as ``torch.argmax``.

    On CPU ``torch.argmax`` over rows costs about as much as ``exp`` (~0.35 ns per element on 2 cores here); the
    sequence row max, ``== max``, times ``K - k``, row max (all vectorised) finds the same first index ~3x faster.
    It overwrites the block. A row with a NaN falls back to ``torch.argmax``/``argmin``.
    """

    def __init__(self, k: int, block_rows: int, device: torch.device, largest: bool = True):
        self.k, self.largest = k, largest
        self.fast = device.type == "cpu" and k < (1 << 24)
        self.best = torch.empty(block_rows, dtype=torch.float32, device=device)
        # K - k: exact in float32 for K < 2^24
        self.desc = torch.arange(k, 0, -1, dtype=torch.float32, device=device) if self.fast else None

    def __call__(self, m: Tensor, out: Tensor) -> Tensor:
        if not self.fast:
            return torch.argmax(m, 1, out=out) if self.largest else torch.argmin(m, 1, out=out)
        best = self.best[: m.shape[0]]
        (torch.amax if self.largest else torch.amin)(m, 1, out=best)
        if torch.isnan(best).any():
            return torch.argmax(m, 1, out=out) if self.largest else torch.argmin(m, 1, out=out)
        torch.eq(m, best[:, None], out=m)  # 1 at the extrema of each row, 0 elsewhere
        m.mul_(self.desc)  # K - k at the extrema
        torch.amax(m, 1, out=best)  # K - (first extremal k)
        return out.copy_(best.neg_().add_(self.k))


def nearest_code(x: Tensor, codebook: Tensor, block_rows: int | None = None) -> Tensor:
    """Index of the nearest code (eq. 1) for each row of ``x`` ``(N, D)``; ``(N,)`` int64.

    Uses squared distances without the constant ``||x||^2`` term (one ``addmm``), in row blocks of at most
    ``block_rows`` (default: about 8 MiB per block on the CPU, 256 MiB on a GPU), so no N x K matrix is made.
    """
    n, k = x.shape[0], codebook.shape[0]
    out = torch.empty(n, dtype=torch.long, device=x.device)
    if n == 0:
        return out
    if k == 0:
        raise ValueError("nearest_code: the codebook is empty.")
    block_rows = min(n, block_rows or _default_block_rows(k, x.device))
    c_sq = (codebook * codebook).sum(1)
    c_t = codebook.t()
    scratch = torch.empty(block_rows, k, dtype=torch.result_type(x, codebook), device=x.device)
    argmin = _RowArg(k, block_rows, x.device, largest=False) if scratch.dtype == torch.float32 else None
    for s in range(0, n, block_rows):
        e = min(n, s + block_rows)
        d = torch.addmm(c_sq, x[s:e], c_t, beta=1, alpha=-2, out=scratch[: e - s])
        if argmin is not None:
            argmin(d, out[s:e])
        else:
            torch.argmin(d, 1, out=out[s:e])
    return out


class _StraightThrough(torch.autograd.Function):
    """Forward: a copy of ``codes``; backward: the incoming gradient to both ``z`` and ``codes``."""

    @staticmethod
    def forward(ctx, z: Tensor, codes: Tensor) -> Tensor:
        return codes.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, grad


def straight_through(z: Tensor, codes: Tensor) -> Tensor:
    """The straight-through estimator (OptVQ eq. 2, VQ-VAE's ``z + sg(codes - z)``): forward value exactly ``codes``
    ``(N, d)``, the gradient passed unchanged to ``z`` ``(N, d)`` and to ``codes``. The same gradients as
    ``codes + (z - z.detach())`` in one copy instead of two passes over ``(N, d)`` tensors."""
    return _StraightThrough.apply(z, codes)


class _MSEGivenValue(torch.autograd.Function):
    """``F.mse_loss(x, target)`` whose value was computed already: forward returns it, backward is the mean-squared
    error's gradient to ``x`` (``target`` is a constant)."""

    @staticmethod
    def forward(ctx, x: Tensor, target: Tensor, value: Tensor) -> Tensor:
        ctx.save_for_backward(x, target)
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        x, target = ctx.saved_tensors
        return torch.ops.aten.mse_loss_backward(grad, x, target, 1), None, None  # 1: torch's Reduction::Mean


def vq_losses(z: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
    """The commitment loss ``mse(z, sg(codes))`` (gradient to ``z`` only) and the codebook loss
    ``mse(codes, sg(z))`` (gradient to ``codes`` only) of VQ-VAE, for ``(N, d)`` features and their codes: the values
    and gradients of the two ``F.mse_loss`` calls, with the forward's pass over ``(N, d)`` made once."""
    value = F.mse_loss(z.detach(), codes.detach())  # the one pass; (z - c)^2 and (c - z)^2 round alike
    commitment = _MSEGivenValue.apply(z, codes.detach(), value)  # gradient to z only
    codebook = _MSEGivenValue.apply(codes, z.detach(), value)  # gradient to codes only
    return commitment, codebook


def rotation_trick(z: Tensor, codes: Tensor, eps: float = 1e-6) -> Tensor:
    """The rotation trick (Fifty et al., "Restructuring Vector Quantization with the Rotation Trick", ICLR 2025,
    arXiv:2410.06424, eq. 4 and Algorithm 1): a straight-through replacement whose forward value is exactly ``codes``
    ``(N, d)`` and whose gradient reaches ``z`` ``(N, d)`` through the rotation and rescaling that take ``z`` onto its
    code, ``codes ~ s * R z`` with ``R z = z - 2 r (r.z) + 2 q (u.z)``, ``u = z/|z|``, ``q = e/|e|``,
    ``r = (u + q)/|u + q|``, ``s = |e|/|z|``, all treated as constants. As with the identity estimator, ``codes`` keep
    their own gradient (to the codebook)."""
    z_norm = z.norm(dim=-1, keepdim=True).clamp_min(eps)
    e_norm = codes.norm(dim=-1, keepdim=True).clamp_min(eps)
    u, q = (z / z_norm).detach(), (codes / e_norm).detach()
    r = F.normalize(u + q, dim=-1, eps=eps).detach()
    rotated = z - 2 * r * (r * z).sum(-1, keepdim=True) + 2 * q * (u * z).sum(-1, keepdim=True)  # R z
    transformed = (e_norm / z_norm).detach() * rotated  # (N, d), equal to codes up to rounding
    return straight_through(transformed, codes)  # forward value exactly the codes


def code_usage_and_perplexity(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Fraction of codes used at least once, and the perplexity ``exp(H(p))`` of the code histogram ``counts``."""
    counts = counts.float()
    usage = torch.count_nonzero(counts) / counts.numel()
    p = counts / counts.sum().clamp(min=1)
    entropy = torch.special.entr(p).sum()  # -sum p log p, 0 log 0 = 0
    return usage, torch.exp(entropy)


def usage_statistics(counts: Tensor) -> dict:
    """``usage``, ``perplexity`` and ``dead_codes`` of a code histogram ``counts`` ``(K,)``, as Python numbers."""
    usage, perplexity = code_usage_and_perplexity(counts)
    return {"usage": float(usage), "perplexity": float(perplexity), "dead_codes": int((counts == 0).sum())}


def check_index_range(indices: Tensor, codebook_size: int, name: str = "indices") -> None:
    """``ValueError`` naming ``name`` unless every value of ``indices`` is in ``[0, codebook_size)``."""
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= codebook_size:
            raise ValueError(f"{name}: expected values in [0, {codebook_size}), got min {lo} and max {hi}.")


def check_features(t: Tensor, name: str = "x", hint: str = "") -> None:
    """``ValueError`` naming ``name`` unless ``t`` is finite with magnitudes up to :data:`MAX_FEATURE_MAGNITUDE`
    (larger values overflow the float32 distances and losses); ``hint`` is appended as the suggested fix."""
    if not t.numel():
        return
    peak = max_magnitude(t)  # on CPU, one compiled sweep (where the Sinkhorn passes are loaded)
    if peak is None:
        peak = float(t.detach().abs().amax())  # one host sync
    if not math.isfinite(peak):
        raise ValueError(f"{name}: contains NaN or Inf{'; ' + hint if hint else '.'}")
    if peak > MAX_FEATURE_MAGNITUDE:
        raise ValueError(
            f"{name}: largest magnitude {peak:.3g} exceeds {MAX_FEATURE_MAGNITUDE:.0e}, where float32 squared "
            f"distances overflow; normalise or rescale the features{'; ' + hint if hint else '.'}"
        )


def check_sinkhorn_args(
    x: Tensor, codebook: Tensor, epsilon: float, n_iters: int, normalize: str, check_finite: bool = True
) -> None:
    """``ValueError`` for a bad Sinkhorn argument; ``check_finite`` also checks the values (one host sync each)."""
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"sinkhorn: expected x (N, D) and codebook (K, D) with the same D, got x {tuple(x.shape)} and "
            f"codebook {tuple(codebook.shape)}."
        )
    if codebook.shape[0] == 0:
        raise ValueError("sinkhorn: the codebook is empty (K = 0); give at least one code.")
    if normalize not in SINKHORN_NORMALIZE_MODES:
        raise ValueError(f"sinkhorn: normalize={normalize!r}, expected one of {SINKHORN_NORMALIZE_MODES}.")
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"sinkhorn: epsilon={epsilon!r}, expected a finite positive number.")
    if n_iters < 1:
        raise ValueError(f"sinkhorn: n_iters={n_iters!r}, expected an integer >= 1.")
    for name, t in (("x", x), ("codebook", codebook)) if check_finite else ():
        check_features(t, f"sinkhorn: {name}", "the assignment needs finite features and codes")
