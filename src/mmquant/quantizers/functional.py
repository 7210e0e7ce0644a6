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

The N x K matrix is held once (one buffer) and visited in row blocks of ~8 MiB, each worked on while it is in cache:

1. distances in the matrix-product form of ``torch.cdist`` (same operands; bit-identical to it in our tests), their
   row minima, per-row sums and norms for ``std(D)``; the buffer receives ``D - rowmin D``;
2. ``M`` in place (``exp2``, ~4x cheaper than ``exp`` on CPU) and the first column sums;
3. each of the first ``n_iters - 1`` iterations: ``M b``, the token update and that block's share of the next
   column sums, so one iteration reads the buffer once (column sums summed across blocks in float64);
4. ``argmax_k M[n, k] b_k``.

That is ``n_iters + 2`` passes over the buffer (7 at the default 5 iterations; the reference makes ~45 passes over
N x K tensors, of which it allocates 7, ~4 alive at its peak). On CPU the matrix-vector products run as batched
GEMMs (``torch.mv`` is single-threaded), the row argmax avoids ``torch.argmax`` (slow there), and a fresh buffer is
advised onto transparent huge pages (page faults of a 4 KiB-page buffer cost as much as the distance matmul). When
N x K exceeds ``max_buffer_elements`` no buffer is kept at all and each pass recomputes its blocks (chunked mode,
identical results). Under ``torch.distributed`` the statistics, the column sums and the token count are
all-reduced, so the marginals are global: a run on several processes gives the assignment of one process holding
the whole batch.

Cost, 2-core AMD EPYC (Zen 5), float32, N=16384, K=1024, D=64: ``nearest_code`` ~14 ms (one matmul, ~12 ms, and
a row argmin), ``sinkhorn_assign`` ~43 ms, the reference ~225 ms. The gap to nearest neighbour is the algorithm's
own work: writing the 64 MiB buffer, ``sqrt`` and ``exp2`` of every entry (~5 ms), and six more streaming passes over
it with their products (~3 ms each).
"""

from __future__ import annotations

import ctypes
import math
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

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
    "sinkhorn_assign",
    "sinkhorn_plan",
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
# Past 256 Mi elements (1 GiB of float32) the matrix is not kept but recomputed block by block.
_DEFAULT_MAX_BUFFER_ELEMENTS = 1 << 28
# Buffers from this size on are advised to use transparent huge pages (see _advise_huge_pages).
_HUGE_PAGE_MIN_BYTES = 8 << 20
_HUGE_PAGE = 2 << 20
_LOG2_E = 1.4426950408889634


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _cdist_operands(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """``[-2x, |x|^2, 1]`` and ``[c, 1, |c|^2]``: their product is the matrix of squared distances.

    This is the matrix-product form ``torch.cdist`` itself uses for p=2 (ATen ``_euclidean_dist``), so the distances
    below round like those of ``torch.cdist``, which the reference OptVQ code uses.
    """
    x_norm = x.pow(2).sum(-1, keepdim=True)
    c_norm = codebook.pow(2).sum(-1, keepdim=True)
    xa = torch.cat([x.mul(-2), x_norm, torch.ones_like(x_norm)], -1)
    ca = torch.cat([codebook, torch.ones_like(c_norm), c_norm], -1)
    return xa, ca


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


_madvise = None


def _advise_huge_pages(t: Tensor) -> None:
    """Ask Linux to back the (fresh, not yet touched) CPU tensor ``t`` with 2 MiB transparent huge pages.

    A fresh N x K buffer is mapped lazily and costs one page fault per 4 KiB at its first write: about 1 ns per
    float32, as much as the distance matmul itself. With huge pages the kernel maps 2 MiB at a time (~10x less). Only
    advice (``madvise(MADV_HUGEPAGE)``): a no-op where transparent huge pages are off, and skipped off Linux.
    """
    global _madvise
    if _madvise is None:
        _madvise = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.madvise
                fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                fn.restype = ctypes.c_int
                _madvise = fn
            except (OSError, AttributeError):
                pass
    if not _madvise:
        return
    start = (t.data_ptr() + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
    end = (t.data_ptr() + t.numel() * t.element_size()) // _HUGE_PAGE * _HUGE_PAGE
    if end > start:
        _madvise(start, end - start, 14)  # MADV_HUGEPAGE


def _empty_matrix(rows: int, cols: int, device: torch.device, private: bool = True) -> Tensor:
    """An uninitialised float32 ``(rows, cols)`` matrix; a large one on CPU gets transparent huge pages.

    ``private`` (the matrix does not leave this module): it is also placed on a 2 MiB boundary (2 MiB more is
    reserved), so every page of it can be a huge page and row blocks of 2 MiB multiples map to whole pages.
    """
    n = rows * cols
    if device.type != "cpu" or n * 4 < _HUGE_PAGE_MIN_BYTES:
        return torch.empty(rows, cols, dtype=torch.float32, device=device)
    if not private:
        out = torch.empty(rows, cols, dtype=torch.float32, device=device)
    else:
        raw = torch.empty(n + _HUGE_PAGE // 4, dtype=torch.float32, device=device)
        skip = (-raw.data_ptr() % _HUGE_PAGE) // 4
        out = raw[skip : skip + n].view(rows, cols)
    _advise_huge_pages(out)
    return out


def _default_block_rows(k: int) -> int:
    return max(1, _DEFAULT_BLOCK_ELEMENTS // max(k, 1))


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
    ``block_rows`` (default: about 8 MiB per block), so no N x K matrix is made.
    """
    n, k = x.shape[0], codebook.shape[0]
    out = torch.empty(n, dtype=torch.long, device=x.device)
    if n == 0:
        return out
    if k == 0:
        raise ValueError("nearest_code: the codebook is empty.")
    block_rows = min(n, block_rows or _default_block_rows(k))
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
    return codes + (transformed - transformed.detach())  # forward value exactly the codes


def code_usage_and_perplexity(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Fraction of codes used at least once, and the perplexity ``exp(H(p))`` of the code histogram ``counts``."""
    counts = counts.float()
    total = counts.sum()
    usage = (counts > 0).float().mean()
    p = counts / total.clamp(min=1)
    entropy = -(p * torch.log(p.clamp(min=1e-10))).sum()
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
    peak = t.detach().abs().amax()
    if not torch.isfinite(peak):
        raise ValueError(f"{name}: contains NaN or Inf{'; ' + hint if hint else '.'}")
    if float(peak) > MAX_FEATURE_MAGNITUDE:
        raise ValueError(
            f"{name}: largest magnitude {float(peak):.3g} exceeds {MAX_FEATURE_MAGNITUDE:.0e}, where float32 squared "
            f"distances overflow; normalise or rescale the features{'; ' + hint if hint else '.'}"
        )


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
    for name, t in (("x", x), ("codebook", codebook)):
        check_features(t, f"sinkhorn: {name}", "the assignment needs finite features and codes")


class _Block:
    """One row block ``s:e`` of the N x K matrix and the views the passes use on it."""

    __slots__ = ("s", "e", "xa", "rowmin", "mat", "a", "r", "a3", "r3", "mat3", "mat3t", "col3")

    def __init__(self, s: int, e: int, xa: Tensor, rowmin: Tensor, mat: Tensor, a: Tensor, r: Tensor, split: int):
        self.s, self.e, self.xa, self.rowmin, self.mat, self.a, self.r = s, e, xa, rowmin, mat, a, r
        rows, k = mat.shape
        if split > 1 and rows % split == 0:  # views for the batched products of _Kernel.rows_ / cols_
            self.mat3 = mat.view(split, rows // split, k)
            self.mat3t = self.mat3.transpose(1, 2)
            self.a3 = a.view(split, 1, rows // split)
            self.r3 = r.view(split, 1, rows // split)
        else:
            self.mat3 = self.mat3t = self.a3 = self.r3 = None
        self.col3 = None


class _Kernel:
    """The kernel ``M = exp(-lam (D - rowmin D))`` in row blocks: kept in one N x K buffer, or recomputed per pass.

    Also holds the token vectors (``a`` and scratch ``r``) and does the two matrix-vector products of a pass. On CPU
    ``torch.mv`` (BLAS gemv) runs on one thread; written as a batch of ``t`` products over ``t`` row slices of the
    block (``torch.bmm``) it is shared by the ``t`` intra-op threads (~1.7x faster on 2 cores).
    """

    def __init__(self, x: Tensor, codebook: Tensor, block_rows: int, keep: bool, plan: bool = False):
        n, k = x.shape[0], codebook.shape[0]
        device = x.device
        self.n, self.k, self.device = n, k, device
        self.xa, self.ca = _cdist_operands(x, codebook)
        self.rows = max(1, min(n, block_rows))
        self.buffer = _empty_matrix(n, k, device, private=not plan) if keep else None
        # chunked mode: the one block every pass recomputes its blocks into
        self.scratch = None if keep else torch.empty(self.rows, k, dtype=torch.float32, device=device)
        self.lam = 1.0
        self.rowmin = torch.empty(n, dtype=torch.float32, device=device)
        self.a = torch.empty(n, dtype=torch.float32, device=device)
        self.r = torch.empty(n, dtype=torch.float32, device=device)
        self.split = max(1, torch.get_num_threads()) if device.type == "cpu" else 1
        self.blocks = []
        for s in range(0, n, self.rows):
            e = min(n, s + self.rows)
            mat = self.buffer[s:e] if keep else self.scratch[: e - s]
            blk = _Block(s, e, self.xa[s:e], self.rowmin[s:e, None], mat, self.a[s:e], self.r[s:e], self.split)
            self.blocks.append(blk)
        # each block's float32 share of the column sums, summed over blocks in float64 at the end of a pass
        # (float32 throughout is ~7x less accurate: the sums run over all N tokens)
        self.col_parts = torch.empty(len(self.blocks), self.split, 1, k, dtype=torch.float32, device=device)
        for i, blk in enumerate(self.blocks):
            blk.col3 = self.col_parts[i]
        self.b = self.b3 = None

    def distances(self, blk: _Block) -> Tensor:
        """Block of ``D - rowmin D`` (``rowmin`` as set by the first pass)."""
        return _distances_into(blk.xa, self.ca, blk.mat).sub_(blk.rowmin)

    def exponentiate(self, shifted: Tensor) -> Tensor:
        """``D - rowmin D`` (a block) becomes that block of ``M``, in place.

        ``exp(-lam t)`` is taken as ``exp2(-lam log2(e) t)``: the same rounding (one product, one accurate power),
        and ``torch.exp2`` is ~4x faster than ``torch.exp`` on CPU (AVX-512 here).
        """
        return shifted.mul_(-self.lam * _LOG2_E).exp2_()

    def kernel(self, blk: _Block) -> Tensor:
        """Block of ``M``: in buffered mode written by the second pass, in chunked mode recomputed."""
        if self.buffer is not None:
            return blk.mat
        return self.exponentiate(self.distances(blk))

    def set_b(self, b: Tensor) -> None:
        self.b = b
        self.b3 = b.view(1, 1, self.k).repeat(self.split, 1, 1) if self.split > 1 else None

    def rows_(self, blk: _Block, m: Tensor) -> Tensor:
        """``r[s:e] = M_blk @ b``."""
        if blk.mat3 is not None:
            return torch.bmm(self.b3, blk.mat3t if m is blk.mat else m.view_as(blk.mat3).transpose(1, 2), out=blk.r3)
        return torch.mv(m, self.b, out=blk.r)

    def cols_(self, blk: _Block, m: Tensor) -> None:
        """This block's share of ``M^T a``, into ``col_parts``."""
        if blk.mat3 is not None:
            torch.bmm(blk.a3, blk.mat3 if m is blk.mat else m.view_as(blk.mat3), out=blk.col3)
        else:
            blk.col3.zero_()
            torch.mv(m.t(), blk.a, out=blk.col3[0, 0])

    def column_sums(self) -> Tensor:
        return self.col_parts.view(-1, self.k).sum(0, dtype=torch.float64)


def _distance_statistics(kern: _Kernel, normalize: str, distributed: bool) -> float:
    """First pass: distances, their row minima (into ``kern.rowmin``), and the scale of ``lam``.

    The buffer receives ``D - rowmin D`` (the next pass exponentiates it). For ``normalize="all"`` the scale is
    ``1 / (std(D) + 1e-6)`` (eq. 11 decentering), the std taken over all of D (and over all processes) from per-row
    sums and norms of ``D - rowmin D`` (shifted: less cancellation), combined in float64.
    """
    n = kern.n
    want_std = normalize == "all"
    if want_std:
        row_sum = torch.empty(n, dtype=torch.float32, device=kern.device)
        row_norm = torch.empty(n, dtype=torch.float32, device=kern.device)
    for blk in kern.blocks:
        d = _distances_into(blk.xa, kern.ca, blk.mat)
        torch.amin(d, 1, keepdim=True, out=blk.rowmin)
        if want_std:
            d.sub_(blk.rowmin)
            torch.sum(d, 1, out=row_sum[blk.s : blk.e])
            torch.linalg.vector_norm(d, 2, 1, out=row_norm[blk.s : blk.e])
        elif kern.buffer is not None:
            d.sub_(blk.rowmin)
    if normalize == "dim":
        return 1.0 / math.sqrt(kern.xa.shape[1] - 2)
    if normalize == "none":
        return 1.0
    # D = t + m (t = D - rowmin, m = rowmin): sum D = sum t + K sum m, sum D^2 = sum t^2 + 2 sum m t + K sum m^2
    m64, s64 = kern.rowmin.double(), row_sum.double()
    sums = torch.stack(  # count, sum D, sum D^2
        [
            torch.tensor(float(n * kern.k), dtype=torch.float64, device=kern.device),
            s64.sum() + kern.k * m64.sum(),
            row_norm.double().square().sum() + 2 * (m64 * s64).sum() + kern.k * m64.square().sum(),
        ]
    )
    if distributed:
        _all_reduce(sums)
    count, total, total_sq = sums.tolist()
    var = max(total_sq - total * total / max(count, 1.0), 0.0) / max(count - 1.0, 1.0)  # unbiased, as torch.std
    return 1.0 / (math.sqrt(var) + 1e-6)


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
    block_rows = block_rows or _default_block_rows(k)
    max_buffer_elements = max_buffer_elements or _DEFAULT_MAX_BUFFER_ELEMENTS
    keep = want_plan or n * k <= max_buffer_elements
    kern = _Kernel(x, codebook, block_rows, keep, plan=want_plan)

    kern.lam = lam = epsilon * _distance_statistics(kern, normalize, distributed)  # eq. 10 with eqs. 11-12 folded in
    rowmin = kern.rowmin
    n_global = n
    global_min = rowmin.min() if n > 0 else torch.full((), math.inf, device=x.device)
    if distributed:
        n_global = int(_all_reduce(torch.tensor(float(n), dtype=torch.float64, device=x.device)).item())
        global_min = _all_reduce(global_min.clone(), dist.ReduceOp.MIN)
    # row factors taken out of M and kept in a: exp(-lam D) = a_n * M_nk * exp(-lam * global_min)
    a = torch.sub(rowmin, global_min, out=kern.a).mul_(-lam).exp_()

    # second pass: M in place of D - rowmin D, and the column sums of diag(a) M
    for blk in kern.blocks:
        m = kern.exponentiate(blk.mat) if kern.buffer is not None else kern.kernel(blk)
        kern.cols_(blk, m)
    col = kern.column_sums()
    if distributed:
        _all_reduce(col)
    total = col.sum() + 1e-8  # the reference's "Q /= sum(Q)"
    a.div_(total)
    col.div_(total)
    b = torch.ones(k, dtype=torch.float64, device=x.device)
    eps_n = torch.tensor(1e-8 * n_global, dtype=torch.float32, device=x.device)
    for it in range(n_iters):
        b = b / (b * col + 1e-8) / k  # each code receives mass 1/K
        if it == n_iters - 1 and not want_plan:
            break
        # one fused pass: token update of each block, then that block's share of the next column sums
        kern.set_b(b.float())
        for blk in kern.blocks:
            m = kern.kernel(blk)
            kern.rows_(blk, m)
            # each token receives mass 1/N: a / (a r + 1e-8) / N, as a / (N a r + N 1e-8)
            blk.a.div_(torch.addcmul(eps_n, blk.a, blk.r, value=n_global, out=blk.r))
            kern.cols_(blk, m)
        col = kern.column_sums()
        if distributed:
            _all_reduce(col)
    return kern, a, b.float(), n_global


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
            reference's ``normalize_mode="all"``); ``"dim"`` divides distances by ``sqrt(D)``; ``"none"`` uses them
            raw.
        block_rows: rows per block (default: about 8 MiB per block).
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
        argmax = _RowArg(kern.k, kern.rows, x.device)
        for blk in kern.blocks:
            # argmax_k P[n, k] = argmax_k M[n, k] b_k; M is not needed afterwards, its block is overwritten
            argmax(kern.kernel(blk).mul_(b), out[blk.s : blk.e])
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
