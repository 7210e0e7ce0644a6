"""The fast Sinkhorn (OptVQ) assignment used in training: the algorithm of ``sinkhorn.py`` in scaling-vector form.

It implements OptVQ, "Preventing Local Pitfalls in Vector Quantization via Optimal
Transport" (Zhang et al., arXiv:2412.15195; reference code github.com/zbr17/OptVQ), Sec. 3.2-3.3 and Algorithm 1,
in scaling-vector form (see ``../shared/prototypes/sinkhorn_scaling.py`` for the derivation):

* The reference normalises the cost as ``((D - mean) / std) - min`` (eqs. 11-12) and starts from
  ``Q = exp(-epsilon * cost)`` (eq. 10). The two shifts multiply ``Q`` by a constant that the first division by
  the total removes, so only ``lam = epsilon / (std(D) + 1e-6)`` matters.
* With ``M = exp(-lam * (D - rowmin D))`` the plan is ``diag(a) M diag(b)``; the row/column normalisations of
  the reference (with its ``+1e-8`` guards) become updates of the vectors ``a`` (tokens) and ``b`` (codes).
* The final argmax over codes of ``P[n, k]`` equals ``argmax_k M[n, k] b_k``, so the last token update is skipped.

The N x K matrix is held once (one buffer) and visited in row blocks of ~16 MiB (on a GPU 256 MiB: no cache to
fit, fewer launches), each worked on while it is in cache:

1. distances in the matrix-product form of ``torch.cdist`` (same operands; bit-identical to it in our tests), their
   row minima, per-row sums and norms for ``std(D)``; the buffer receives ``D - rowmin D``. On a CPU with AVX-512
   the GEMM is compiled too and fused with this pass, 60 rows at a time while they are in L2 (each sum by fused
   multiply-adds in the operands' order, as the BLAS micro-kernel sums an inner size this small: equal to
   ``torch.mm`` on the machines of ``benchmarks/results``);
2. ``M`` in place and the first column sums (PyTorch passes: ``exp2``, ~4x cheaper than ``exp`` on CPU; compiled:
   a table-and-cubic exponential on AVX-512, within 2 ulp);
3. each of the first ``n_iters - 1`` iterations: ``M b``, the token update and that block's share of the next
   column sums, so one iteration reads the buffer once (column sums summed across blocks in float64);
4. ``argmax_k M[n, k] b_k``.

That is ``n_iters + 2`` passes over the buffer (7 at the default 5 iterations; the reference makes ~45 passes over
N x K tensors, of which it allocates 7, ~4 alive at its peak). Each pass is a method of the kernel class: on CPU
(``_NativeKernel``) one call per block of the compiled sweeps of :mod:`.sinkhorn_native`; when the buffer holds
every block (and no process group is active), passes 2-4 are a single call, one parallel region (``solve``), with
no Python between them. In the compiled sweeps a Sinkhorn iteration
reads each row once (``M b``, the token update and ``M^T a`` while the row is in L1) and the small-D distances are
computed inside the first sweep; elsewhere, or where no C compiler builds them (``_Kernel``), PyTorch operations:
batched GEMMs for the matrix-vector products (``torch.mv`` is single-threaded), a row argmax that avoids
``torch.argmax`` (slow on CPU). On CPU the buffer is a per-thread workspace kept between calls (up to the buffer
limit; ``release_workspace()`` frees it): a fresh buffer costs a page fault per 4 KiB at its first write, as much as
the whole assignment at N=16384, K=1024. When N x K exceeds ``max_buffer_elements``, the buffer holds the first
blocks that fit and each pass recomputes the others (identical results), so the cost rises gradually past the limit
rather than all blocks being recomputed at once. Under ``torch.distributed`` the statistics, the column sums and the
token count are all-reduced, so the marginals are global: a run on several processes gives the assignment of one
process holding the whole batch.

Cost, float32, one call after a warm-up: see ``benchmarks/results/bench_quantizers.json`` (machine recorded there)
(``python benchmarks/bench_quantizers.py``, which times the compiled and the PyTorch passes side by side).
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading

import torch
import torch.distributed as dist
from torch import Tensor

from .functional import (
    _cdist_operands,
    _code_operand,
    _default_block_rows,
    _distances_into,
    _RowArg,
    check_sinkhorn_args,
    is_distributed,
)
from .sinkhorn_native import NativePasses, library

__all__ = ["release_workspace", "sinkhorn_assign", "sinkhorn_plan"]

# At most 512 Mi entries (2 GiB of float32; N=65536 tokens x K=8192 codes) of the matrix are kept; the row blocks
# past them are recomputed in each pass.
_DEFAULT_MAX_BUFFER_ELEMENTS = 1 << 29
# Row blocks on CPU: 16 MiB of float32 (the nearest-code search keeps 8 MiB). On an Intel Xeon (2 MiB L2 per core, a
# large shared L3; the machine of the recording before the current one) one 16 MiB block at N=4096, K=1024, D=64 took
# ~6% less time than two of 8 MiB in the interleaved grid (bench_quantizer_grid.py, that cell run twice each way,
# float32 and bf16: 8.1 vs 8.6 ms, fewer GEMM and sweep calls); at N=16384 8-64 MiB made no difference. (On the AMD
# EPYC before it, 2-16 MiB were within ~5%, 8 MiB the fastest.)
_BLOCK_ELEMENTS = 1 << 22
# Buffers from this size on are advised to use transparent huge pages (see _advise_huge_pages).
_HUGE_PAGE_MIN_BYTES = 8 << 20
_HUGE_PAGE = 2 << 20
_LOG2_E = 1.4426950408889634
# Up to this feature size the compiled passes compute distances directly rather than by a GEMM of inner size D + 2
_DIRECT_MAX_DIM = 8


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


def _native_passes(device: torch.device, k: int, native: bool | None) -> NativePasses | None:
    """The compiled passes for an assignment on ``device``, or None for the PyTorch ones (see ``sinkhorn_assign``)."""
    if native is False or device.type != "cpu":
        if native:
            raise ValueError(f"native=True: the compiled passes run on CPU tensors, got {device.type} ones.")
        return None
    lib = library()
    if lib is None and native:
        raise RuntimeError(
            "native=True: the compiled Sinkhorn passes could not be built (no C compiler with OpenMP found, or "
            "MMQUANT_NATIVE=0); install gcc or pass native=None to fall back to PyTorch."
        )
    return NativePasses(lib, k) if lib is not None else None


# The N x K buffer of the last CPU assignment of each thread, reused by the next one up to the buffer limit: a fresh
# buffer costs a page fault per 4 KiB at its first write (here ~30 ms for the 64 MiB of N=16384, K=1024, as much as
# the whole assignment), and a training loop asks for the same size every step. ``release_workspace()`` frees it.
_WORKSPACE_MAX_BYTES = _DEFAULT_MAX_BUFFER_ELEMENTS * 4
_workspace = threading.local()


def _workspace_matrix(rows: int, cols: int, device: torch.device) -> Tensor:
    """A float32 ``(rows, cols)`` matrix for one assignment: on CPU (up to ``_WORKSPACE_MAX_BYTES``) a view of this
    thread's workspace, grown when too small and kept for the next call; elsewhere a fresh one."""
    n = rows * cols
    if device.type != "cpu" or n * 4 > _WORKSPACE_MAX_BYTES:
        return _empty_matrix(rows, cols, device)
    buffer = getattr(_workspace, "buffer", None)
    if buffer is None or buffer.numel() < n:
        _workspace.buffer = None  # the old one is freed before the new one is made
        buffer = _workspace.buffer = _empty_matrix(1, n, device).view(-1)
    return buffer[:n].view(rows, cols)


def release_workspace() -> None:
    """Free the calling thread's workspace of :func:`sinkhorn_assign` (the N x K buffer it keeps between calls on
    CPU, at most ``max_buffer_elements`` float32: 2 GiB by default); the next assignment makes a new one."""
    _workspace.buffer = None


def _all_reduce(t: Tensor, op=None) -> Tensor:
    dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


class _Block:
    """One row block ``s:e`` of the N x K matrix and the views the passes use on it."""

    __slots__ = ("s", "e", "xa", "rowmin", "mat", "kept", "a", "r", "a3", "r3", "mat3", "mat3t", "col3")

    def __init__(
        self, s: int, e: int, xa: Tensor, rowmin: Tensor, mat: Tensor, kept: bool, a: Tensor, r: Tensor, split: int
    ):
        self.s, self.e, self.xa, self.rowmin, self.mat, self.a, self.r = s, e, xa, rowmin, mat, a, r
        self.kept = kept  # mat is this block's own part of the buffer (else the scratch block, recomputed per pass)
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
    """The kernel ``M = exp(-lam (D - rowmin D))`` in row blocks, kept in a buffer of at most ``max_kept`` entries:
    the blocks that do not fit are recomputed in each pass (so the cost grows smoothly past the buffer limit).

    Also holds the token vectors (``a`` and scratch ``r``) and does the two matrix-vector products of a pass. On CPU
    ``torch.mv`` (BLAS gemv) runs on one thread; written as a batch of ``t`` products over ``t`` row slices of the
    block (``torch.bmm``) it is shared by the ``t`` intra-op threads (~1.7x faster on 2 cores).
    """

    # the matrix-vector products of a pass as batched GEMMs (with their scratch: r, per-thread views, col_parts)
    batched = True

    def __init__(self, x: Tensor, codebook: Tensor, block_rows: int, max_kept: int, plan: bool = False):
        n, k = x.shape[0], codebook.shape[0]
        device = x.device
        self.n, self.k, self.dim, self.device = n, k, x.shape[1], device
        self.xa, self.ca = self.operands(x, codebook)
        self.rows = max(1, min(n, block_rows))
        # the first kept_rows rows (whole blocks) are kept; the rest are recomputed into one scratch block
        kept_rows = n if n * k <= max_kept else max_kept // max(k, 1) // self.rows * self.rows
        if plan:  # returned to the caller: its own matrix
            self.buffer = _empty_matrix(kept_rows, k, device, private=False)
        else:
            self.buffer = _workspace_matrix(kept_rows, k, device) if kept_rows else None
        self.scratch = None if kept_rows == n else torch.empty(self.rows, k, dtype=torch.float32, device=device)
        self.lam = 1.0
        self.rowmin = torch.empty(n, dtype=torch.float32, device=device)
        self.a = torch.empty(n, dtype=torch.float32, device=device)
        self.r = torch.empty(n, dtype=torch.float32, device=device) if self.batched else None
        self.split = max(1, torch.get_num_threads()) if device.type == "cpu" and self.batched else 1
        self.blocks = []
        for s in range(0, n, self.rows):
            e = min(n, s + self.rows)
            kept = e <= kept_rows
            mat = self.buffer[s:e] if kept else self.scratch[: e - s]
            xa = None if self.xa is None else self.xa[s:e]
            r = None if self.r is None else self.r[s:e]
            self.blocks.append(_Block(s, e, xa, self.rowmin[s:e, None], mat, kept, self.a[s:e], r, self.split))
        if self.batched:
            # each block's float32 share of the column sums, summed over blocks in float64 at the end of a pass
            # (float32 throughout is ~7x less accurate: the sums run over all N tokens)
            self.col_parts = torch.empty(len(self.blocks), self.split, 1, k, dtype=torch.float32, device=device)
            for i, blk in enumerate(self.blocks):
                blk.col3 = self.col_parts[i]
        self.b = self.b3 = None

    def operands(self, x: Tensor, codebook: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The GEMM operands of the distances (:func:`_cdist_operands`)."""
        return _cdist_operands(x, codebook)

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
        """Block of ``M``: a kept block as the second pass wrote it, another one recomputed."""
        if blk.kept:
            return blk.mat
        return self.exponentiate(self.distances(blk))

    def moments(self, row_sum: Tensor, row_sq: Tensor) -> Tensor:
        """``[count, sum D, sum D^2]`` (float64, on the device: no host copy) from the row sums and sums of squares
        of ``D - rowmin D`` and ``rowmin``."""
        # D = t + m (t = D - rowmin, m = rowmin): sum D = sum t + K sum m, sum D^2 = sum t^2 + 2 sum m t + K sum m^2
        m64, s64 = self.rowmin.double(), row_sum.double()
        return torch.stack(
            [
                torch.full((), float(self.n * self.k), dtype=torch.float64, device=self.device),  # a fill
                s64.sum() + self.k * m64.sum(),
                row_sq.sum() + 2 * (m64 * s64).sum() + self.k * m64.square().sum(),
            ]
        )

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

    # the passes of _prepare and _iterate, each a sweep over the blocks
    def first_pass(self, normalize: str, distributed: bool) -> float | Tensor:
        """Distances, ``kern.rowmin`` and the scale of ``lam`` (:func:`_distance_statistics`)."""
        return _distance_statistics(self, normalize, distributed)

    def second_pass(self) -> Tensor:
        """``M`` in place of ``D - rowmin D``, and the column sums of ``diag(a) M`` (float64)."""
        for blk in self.blocks:
            m = self.exponentiate(blk.mat) if blk.kept else self.kernel(blk)
            self.cols_(blk, m)
        return self.column_sums()

    def update_b(self, b: Tensor, col: Tensor) -> Tensor:
        """One Sinkhorn iteration's code update: each code receives mass 1/K (float64)."""
        return b / (b * col + 1e-8) / self.k

    def iterate(self, b: Tensor, n_global: int, eps_n: Tensor) -> Tensor:
        """One Sinkhorn iteration's token update of each block, then that block's share of the next column sums."""
        self.set_b(b.float())
        for blk in self.blocks:
            m = self.kernel(blk)
            self.rows_(blk, m)
            # each token receives mass 1/N: a / (a r + 1e-8) / N, as a / (N a r + N 1e-8)
            blk.a.div_(torch.addcmul(eps_n, blk.a, blk.r, value=n_global, out=blk.r))
            self.cols_(blk, m)
        return self.column_sums()

    def solve(self, n_iters: int, n_global: int, out: Tensor) -> bool:
        """All passes after the first in one call, ``out`` the assignment: where the compiled passes hold every row
        (:class:`_NativeKernel`); False here, the passes then run one by one."""
        return False

    def assign(self, b: Tensor, out: Tensor) -> None:
        """``out = argmax_k M[n, k] b_k``; the blocks are overwritten."""
        argmax = _RowArg(self.k, self.rows, self.device)
        for blk in self.blocks:
            argmax(self.kernel(blk).mul_(b), out[blk.s : blk.e])


class _NativeKernel(_Kernel):
    """The same passes as :class:`_Kernel`, each sweep one call of the compiled :mod:`.sinkhorn_native` (CPU)."""

    batched = False  # the compiled sweeps do the products

    def __init__(self, x: Tensor, codebook: Tensor, block_rows: int, max_kept: int, passes: NativePasses):
        # small D: the distances computed directly (a GEMM with an inner size of D + 2 is slow); else by the GEMM
        self.direct = x.shape[1] <= _DIRECT_MAX_DIM
        self.passes = passes
        super().__init__(x, codebook, block_rows, max_kept)
        if self.direct:
            self.x, self.x_norm = x, x.square().sum(1)
            passes.set_codebook(codebook)
        self.col64 = torch.empty(len(self.blocks), self.k, dtype=torch.float64)  # a row per block (each pass writes)
        self.b64 = torch.empty(self.k, dtype=torch.float64)  # the code factors, updated in place (update_b)
        self.b32 = torch.empty(self.k, dtype=torch.float32)
        self.neg_lam = 0.0
        # every block kept: the passes after the first sweep the whole buffer in one call (one parallel region)
        self.whole = self.buffer[: self.n] if self.scratch is None and self.blocks else None

    def operands(self, x: Tensor, codebook: Tensor) -> tuple[Tensor | None, Tensor | None]:
        self.packed = None
        if self.direct:  # the compiled first pass computes the distances from x itself
            return None, None
        if self.passes.has_gemm:  # the compiled GEMM's codes operand, packed
            self.packed = self.passes.pack_codes(codebook)
            return self.passes.row_operand(x), None
        return self.passes.row_operand(x), _code_operand(codebook)

    def squared(self, blk: _Block):
        """The block's squared distances: computed into its matrix by the GEMM, or (small D) the block's rows of
        ``x`` and their norms for the compiled pass to compute them while it sweeps."""
        if self.direct:
            return self.x[blk.s : blk.e], self.x_norm[blk.s : blk.e]
        if self.packed is not None:
            self.passes.gemm_prep(blk.mat, blk.xa, self.packed)
        else:
            torch.mm(blk.xa, self.ca.t(), out=blk.mat)
        return None

    def m(self, blk: _Block) -> Tensor:
        """Block of ``M``: a kept block as the second pass wrote it, another one recomputed."""
        if not blk.kept:
            self.passes.kernel(blk.mat, blk.rowmin, self.neg_lam, rows=self.squared(blk))
        return blk.mat

    def first_pass(self, normalize: str, distributed: bool) -> float | Tensor:
        stats = normalize == "all"
        row_sum = torch.empty(self.n, dtype=torch.float64) if stats else None
        row_sq = torch.empty(self.n, dtype=torch.float64) if stats else None
        for blk in self.blocks:
            s, e = blk.s, blk.e
            sums = (row_sum[s:e], row_sq[s:e]) if stats else (None, None)
            if self.packed is not None:  # GEMM and first pass in one call, a row block at a time
                self.passes.gemm_prep(blk.mat, blk.xa, self.packed, blk.rowmin, *sums)
            else:
                self.passes.prep(blk.mat, blk.rowmin, *sums, rows=self.squared(blk))
        return _scale(self, normalize, distributed, row_sum, row_sq)

    def second_pass(self) -> Tensor:
        self.neg_lam = -float(self.lam)
        if self.whole is not None:
            self.passes.exp_cols(self.whole, self.neg_lam, self.a, self.col64[0])
            return self.col64[0]
        for blk, col in zip(self.blocks, self.col64):
            if blk.kept:
                self.passes.exp_cols(blk.mat, self.neg_lam, blk.a, col)
            else:
                self.passes.exp_cols(self.m(blk), None, blk.a, col)
        return self.col64.sum(0)

    def moments(self, row_sum: Tensor, row_sq: Tensor) -> Tensor:
        sums = torch.empty(3, dtype=torch.float64)
        self.passes.moments(self.rowmin, row_sum, row_sq, sums)
        return sums

    def update_b(self, b: Tensor, col: Tensor) -> Tensor:
        if b is not self.b64:  # the first update: b is the loop's ones
            self.b64.copy_(b)
        self.passes.update_b(self.b64, col, self.b32)
        return self.b64

    def iterate(self, b: Tensor, n_global: int, eps_n: Tensor) -> Tensor:
        b32 = self.b32 if b is self.b64 else b.float()
        if self.whole is not None:
            self.passes.iterate(self.whole, b32, self.a, float(n_global), self.col64[0])
            return self.col64[0]
        for blk, col in zip(self.blocks, self.col64):
            self.passes.iterate(self.m(blk), b32, blk.a, float(n_global), col)
        return self.col64.sum(0)

    def solve(self, n_iters: int, n_global: int, out: Tensor) -> bool:
        if self.whole is None:
            return False
        self.neg_lam = -float(self.lam)
        col, n_global = self.col64[0], float(n_global)
        self.passes.solve(self.whole, self.neg_lam, self.a, n_iters, n_global, col, self.b64, self.b32, out)
        return True

    def assign(self, b: Tensor, out: Tensor) -> None:
        if self.whole is not None:
            self.passes.argmax(self.whole, b, out)
            return
        for blk in self.blocks:
            self.passes.argmax(self.m(blk), b, out[blk.s : blk.e])


def _distance_statistics(kern: _Kernel, normalize: str, distributed: bool) -> float | Tensor:
    """First pass: distances, their row minima (into ``kern.rowmin``), and the scale of ``lam``.

    The buffer receives ``D - rowmin D`` (the next pass exponentiates it). For ``normalize="all"`` the scale is
    ``1 / (std(D) + 1e-6)`` (eq. 11 decentering), the std taken over all of D (and over all processes) from per-row
    sums and norms of ``D - rowmin D`` (shifted: less cancellation), combined in float64 and left on the device (a
    0-dim tensor: no host sync).
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
        elif blk.kept:
            d.sub_(blk.rowmin)
    if not want_std:
        return _scale(kern, normalize, distributed, None, None)
    return _scale(kern, normalize, distributed, row_sum, row_norm.double().square())


def _scale(
    kern: _Kernel, normalize: str, distributed: bool, row_sum: Tensor | None, row_sq: Tensor | None
) -> float | Tensor:
    """The factor of ``lam = epsilon * scale``: ``1 / (std(D) + 1e-6)`` for ``normalize="all"``, from the per-row sums
    and sums of squares of ``D - rowmin D`` (and ``kern.rowmin``)."""
    if normalize == "dim":
        return 1.0 / math.sqrt(kern.dim)
    if normalize == "none":
        return 1.0
    sums = kern.moments(row_sum, row_sq)  # count, sum D, sum D^2 (float64)
    if distributed:
        _all_reduce(sums)
    if sums.device.type == "cpu":  # Python floats: the same float64 operations without a dozen tensor ops
        count, total, total_sq = sums.tolist()
        var = max(total_sq - total * total / max(count, 1.0), 0.0) / max(count - 1.0, 1.0)  # as torch.std
        return 1.0 / (math.sqrt(var) + 1e-6)
    count, total, total_sq = sums.unbind()  # left on the device: no host sync
    var = (total_sq - total * total / count.clamp(min=1.0)).clamp(min=0.0) / (count - 1.0).clamp(min=1.0)
    return 1.0 / (var.sqrt() + 1e-6)


def _prepare(
    x: Tensor,
    codebook: Tensor,
    epsilon: float,
    n_iters: int,
    normalize: str,
    block_rows: int | None,
    max_buffer_elements: int | None,
    distributed: bool,
    want_plan: bool,
    check_finite: bool = True,
    native: bool | None = None,
) -> tuple[_Kernel, Tensor, int]:
    """The checks, the first pass and ``lam``: the kernel object, the token factors ``a`` and the global N."""
    check_sinkhorn_args(x, codebook, epsilon, n_iters, normalize, check_finite)
    x, codebook = x.detach().float().contiguous(), codebook.detach().float().contiguous()
    n, k = x.shape[0], codebook.shape[0]
    block_rows = block_rows or _default_block_rows(k, x.device, _BLOCK_ELEMENTS)
    max_buffer_elements = max_buffer_elements or _DEFAULT_MAX_BUFFER_ELEMENTS
    passes = None if want_plan else _native_passes(x.device, k, native)
    if passes is not None:
        kern = _NativeKernel(x, codebook, block_rows, max_buffer_elements, passes)
    else:
        kern = _Kernel(x, codebook, block_rows, n * k if want_plan else max_buffer_elements, plan=want_plan)

    kern.lam = lam = epsilon * kern.first_pass(normalize, distributed)  # eq. 10 with eqs. 11-12 folded in
    rowmin = kern.rowmin
    n_global = n
    global_min = rowmin.min() if n > 0 else torch.full((), math.inf, device=x.device)
    if distributed:
        n_global = int(_all_reduce(torch.tensor(float(n), dtype=torch.float64, device=x.device)).item())
        global_min = _all_reduce(global_min.clone(), dist.ReduceOp.MIN)
    # row factors taken out of M and kept in a: exp(-lam D) = a_n * M_nk * exp(-lam * global_min)
    a = torch.sub(rowmin, global_min, out=kern.a).mul_(-lam).exp_()
    return kern, a, n_global


def _iterate(kern: _Kernel, a: Tensor, n_iters: int, n_global: int, distributed: bool, want_plan: bool) -> Tensor:
    """The passes after the first: the code factors ``b`` (float64) after ``n_iters`` iterations (``a`` updated in
    place; for an assignment the last token update is skipped: it does not change the argmax)."""
    col = kern.second_pass()
    if distributed:
        _all_reduce(col)
    total = col.sum() + 1e-8  # the reference's "Q /= sum(Q)"
    a.div_(total)
    col.div_(total)
    b = torch.ones(kern.k, dtype=torch.float64, device=a.device)
    eps_n = torch.full((), 1e-8 * n_global, dtype=torch.float32, device=a.device)
    for it in range(n_iters):
        b = kern.update_b(b, col)  # each code receives mass 1/K
        if it == n_iters - 1 and not want_plan:
            break
        col = kern.iterate(b, n_global, eps_n)  # each token receives mass 1/N, and the next column sums
        if distributed:
            _all_reduce(col)
    return b


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
    check_finite: bool = True,
    native: bool | None = None,
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
        block_rows: rows per block (default: about 16 MiB per block on the CPU, 256 MiB on a GPU).
        max_buffer_elements: the most entries of the N x K kernel kept in memory (default 2^29, 2 GiB); the row
            blocks past it are recomputed in each pass.
        distributed: all-reduce the sums over the default process group (default: when one is active).
        check_finite: refuse non-finite or overflowing ``x`` and ``codebook`` (a ``ValueError``; one host sync
            each). The quantizers pass False: they check their input once, at their own entry point.
        native: run the sweeps in the compiled CPU passes of :mod:`~mmquant.quantizers.sinkhorn_native` (default
            ``None``: on CPU where they can be built; ``True``: require them, an error where they cannot be built;
            ``False``: PyTorch only). The two agree up to float rounding.

    Returns:
        ``(N,)`` int64 code indices.
    """
    distributed = is_distributed() if distributed is None else distributed
    with torch.autocast(device_type=x.device.type, enabled=False):
        settings = (epsilon, n_iters, normalize, block_rows, max_buffer_elements, distributed)
        kern, a, n_global = _prepare(x, codebook, *settings, want_plan=False, check_finite=check_finite, native=native)
        out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
        if not distributed and kern.solve(n_iters, n_global, out):  # the compiled passes, all in one call
            return out
        b = _iterate(kern, a, n_iters, n_global, distributed, want_plan=False)
        kern.assign(b.float(), out)  # argmax_k P[n, k] = argmax_k M[n, k] b_k
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
        distributed = is_distributed() if distributed is None else distributed
        kern, a, n_global = _prepare(x, codebook, epsilon, n_iters, normalize, None, None, distributed, want_plan=True)
        b = _iterate(kern, a, n_iters, n_global, distributed, want_plan=True)
        return kern.buffer.mul_(a[:, None] * n_global).mul_(b.float())
