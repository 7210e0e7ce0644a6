"""The compiled CPU passes of the Sinkhorn kernel (``sinkhorn_native.c``): built at first use, cached, optional.

:mod:`~mmquant.quantizers.sinkhorn_kernel` holds the algorithm; on CPU it hands each sweep over a row block to one
of these functions, which fuse what PyTorch does as separate sweeps (a Sinkhorn iteration reads the matrix once
instead of twice; sqrt, shift, exp and the column sums share sweeps). The C file is compiled with the system's C
compiler (``$CC`` or ``cc``/``gcc``, OpenMP, ``-O3 -march=native``) the first time a CPU assignment runs in a
process, into a cache folder keyed by the source, the flags and the CPU (``$MMQUANT_NATIVE_CACHE``, default
``~/.cache/mmquant/native``); later processes load the cached library (~1 ms). Where no compiler is found, the build
fails or ``MMQUANT_NATIVE=0`` is set, :func:`library` returns ``None`` and the kernel stays in PyTorch (the same
results up to float rounding, more slowly: ``sinkhorn_torch_over_sinkhorn`` in
``benchmarks/results/bench_quantizers.json``).
Loaded after torch, the library shares torch's OpenMP runtime (same ``libgomp.so.1``) and takes
``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["library", "max_magnitude", "NativePasses"]

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("sinkhorn_native.c")
# Compiled and linked in two steps: linked with -ffast-math, GCC before 13 adds crtfastmath.o to a shared library
# too (GCC bug 55522), whose constructor turns on flush-to-zero for the thread that loads it, so loading the library
# changed torch's float semantics on the main thread (exp(-100) became 0). The passes set that mode themselves, for
# their own duration only (subnormals_off in the C file).
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-c"]
if platform.machine().lower() in ("x86_64", "amd64"):
    # where the CPU has AVX-512, use its full width: GCC's -march=native keeps 256-bit vectors on Intel cores by
    # default; 512-bit ones make the exp and sqrt sweeps ~1.2x faster on a Xeon with AVX-512 (a no-op without it)
    FLAGS.insert(2, "-mprefer-vector-width=512")
LINK_FLAGS = ["-fopenmp", "-shared"]
LIBS = ["-lm"]

_P, _I, _F, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
_SIGNATURES = {
    "mmq_sk_prep": [_P, _I, _I, _P, _P, _P, _P, _I, _P, _P, _P, _INT],
    "mmq_sk_kernel": [_P, _I, _I, _P, _P, _P, _P, _I, _P, _F, _INT],
    "mmq_sk_exp_cols": [_P, _I, _I, _INT, _F, _P, _P, _INT],
    "mmq_sk_iterate": [_P, _I, _I, _P, _P, _F, _P, _INT],
    "mmq_sk_argmax": [_P, _I, _I, _P, _P, _INT],
    "mmq_sk_update_b": [_P, _P, _P, _I],
    "mmq_sk_moments": [_P, _P, _P, _I, _I, _P],
    "mmq_sk_operands": [_P, _P, _I, _I, _P, _INT],
    "mmq_sk_solve": [_P, _I, _I, _F, _P, _INT, _F, _P, _P, _P, _P, _INT],
    "mmq_sk_pack_codes": [_P, _P, _I, _I, _P, _INT],
    "mmq_sk_gemm_prep": [_P, _P, _I, _I, _I, _P, _P, _P, _P, _INT],
    "mmq_sk_gemm_available": [],
    "mmq_max_abs_bits": [_P, _I, _INT],
}
_RESTYPES = {"mmq_sk_gemm_available": ctypes.c_int, "mmq_max_abs_bits": ctypes.c_uint32}
_UNSET = object()
_library = _UNSET


def _cpu_key() -> str:
    """What ``-march=native`` depends on: the machine and the CPU's feature flags."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    return platform.machine() + flags


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dir() -> Path:
    if os.environ.get("MMQUANT_NATIVE_CACHE"):
        return Path(os.environ["MMQUANT_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmquant" / "native"


def _build(cc: str) -> Path:
    """Compile the source into the cache (once per source, flags, compiler and CPU); the path of the library."""
    source = SOURCE.read_bytes()
    flags = " ".join(FLAGS + LINK_FLAGS + LIBS).encode()
    key = hashlib.sha256(b"\0".join([source, flags, cc.encode(), _cpu_key().encode()]))
    target = _cache_dir() / f"sinkhorn_native-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # built beside the target and renamed into place: processes building at once never load a partial file
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    obj = tmp[: -len(".so")] + ".o"
    try:
        run = dict(check=True, capture_output=True, timeout=120)
        subprocess.run([cc, *FLAGS, str(SOURCE), "-o", obj], **run)
        subprocess.run([cc, *LINK_FLAGS, obj, "-o", tmp, *LIBS], **run)
        os.replace(tmp, target)
    finally:
        for path in (tmp, obj):
            if os.path.exists(path):
                os.unlink(path)
    return target


def library() -> ctypes.CDLL | None:
    """The compiled passes (built on the first call of the process), or ``None`` where they are not available."""
    global _library
    if _library is not _UNSET:
        return _library
    _library = None
    if os.environ.get("MMQUANT_NATIVE", "1") == "0" or not SOURCE.exists():
        return None
    cc = _compiler()
    if cc is None:
        logger.info("no C compiler found: the Sinkhorn kernel runs in PyTorch")
        return None
    try:
        lib = ctypes.CDLL(str(_build(cc)))
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, _RESTYPES.get(name)
    except (OSError, subprocess.SubprocessError, AttributeError) as err:
        detail = getattr(err, "stderr", b"") or b""
        logger.warning("building the native Sinkhorn passes failed (%s %s): using PyTorch", err, detail.decode()[:500])
        return None
    _library = lib
    return lib


def max_magnitude(t: Tensor) -> float | None:
    """``max |t|`` of a float32 CPU tensor in one compiled sweep without a temporary (``nan`` if it holds a NaN,
    ``inf`` an infinity but no NaN); ``None`` where the library is not loaded yet (never built by this call, so a
    caller outside the Sinkhorn kernel compiles nothing) or ``t`` is another kind of tensor."""
    lib = _library
    if lib is _UNSET or lib is None or t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
        return None
    bits = lib.mmq_max_abs_bits(_ptr(t), t.numel(), max(1, torch.get_num_threads()))
    if bits > 0x7F800000:
        return math.nan
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _ptr(t: Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


class NativePasses:
    """The passes over row blocks of one assignment, on ``torch.get_num_threads()`` threads.

    Every tensor is a contiguous CPU tensor: blocks ``(rows, K)`` float32, vectors of their rows or of the codes.
    """

    def __init__(self, lib: ctypes.CDLL, k: int):
        self.lib, self.k, self.threads = lib, k, max(1, torch.get_num_threads())
        # the distances' GEMM compiled here (AVX-512), else torch.mm
        self.has_gemm = bool(lib.mmq_sk_gemm_available())

    def pack_codes(self, codebook: Tensor) -> Tensor:
        """The codes' GEMM operand ``[c, 1, |c|^2]`` (:func:`~mmquant.quantizers.functional._code_operand`, the norms
        as PyTorch sums them) for ``codebook`` ``(K, D)`` float32, packed for :meth:`gemm_prep` (panels of 64 codes,
        zero-padded)."""
        k, d = codebook.shape
        norms = codebook.pow(2).sum(-1)
        packed = codebook.new_empty(-(-k // 64) * 64 * (d + 2))
        self.lib.mmq_sk_pack_codes(_ptr(codebook), _ptr(norms), k, d, _ptr(packed), self.threads)
        return packed

    def gemm_prep(
        self,
        d: Tensor,
        xa: Tensor,
        packed: Tensor,
        rowmin: Tensor | None = None,
        row_sum: Tensor | None = None,
        row_sq: Tensor | None = None,
    ) -> None:
        """``d = xa @ ca.T``, the squared distances of the rows behind ``xa`` (:meth:`row_operand`) to the codes
        behind ``packed`` (:meth:`pack_codes`), each a sum by fused multiply-adds in the order of the operands'
        columns (as a BLAS micro-kernel sums them); with ``rowmin``, :meth:`prep` on each row block too, while the
        GEMM has just written it (in cache)."""
        stats = (_ptr(row_sum), _ptr(row_sq)) if row_sum is not None else (None, None)
        rowmin_ptr = _ptr(rowmin) if rowmin is not None else None
        self.lib.mmq_sk_gemm_prep(
            _ptr(xa), _ptr(packed), len(d), self.k, xa.shape[1], _ptr(d), rowmin_ptr, *stats, self.threads
        )

    def prep(self, d: Tensor, rowmin: Tensor, row_sum: Tensor | None, row_sq: Tensor | None, rows=None) -> None:
        """Squared distances -> ``D - rowmin D`` in place; ``rowmin`` and (if given) the row statistics (float64).

        ``rows``: ``(x, x_norm)`` of the block's rows, with :meth:`set_codebook`'s codes: the squared distances are
        computed here (small D) instead of read from ``d``.
        """
        stats = (_ptr(row_sum), _ptr(row_sq)) if row_sum is not None else (None, None)
        self.lib.mmq_sk_prep(_ptr(d), len(d), self.k, *self._rows(rows), _ptr(rowmin), *stats, self.threads)

    def moments(self, rowmin: Tensor, row_sum: Tensor, row_sq: Tensor, out: Tensor) -> None:
        """``out = [count, sum D, sum D^2]`` (float64) of all rows, from :meth:`prep`'s ``rowmin`` and statistics."""
        self.lib.mmq_sk_moments(_ptr(rowmin), _ptr(row_sum), _ptr(row_sq), len(rowmin), self.k, _ptr(out))

    def kernel(self, d: Tensor, rowmin: Tensor, scale: float, rows=None) -> None:
        """Squared distances (or ``rows``, as in :meth:`prep`) -> ``M = exp(scale (D - rowmin D))`` in place."""
        self.lib.mmq_sk_kernel(_ptr(d), len(d), self.k, *self._rows(rows), _ptr(rowmin), scale, self.threads)

    def row_operand(self, x: Tensor) -> Tensor:
        """``[-2x, |x|^2, 1]`` ``(N, D + 2)`` for ``x`` ``(N, D)`` float32: the rows' half of
        :func:`~mmquant.quantizers.functional._cdist_operands`, equal to it, in one sweep."""
        n, d = x.shape
        norms = x.pow(2).sum(-1)  # as PyTorch sums them (the C function copies them)
        xa = x.new_empty(n, d + 2)
        self.lib.mmq_sk_operands(_ptr(x), _ptr(norms), n, d, _ptr(xa), self.threads)
        return xa

    def set_codebook(self, codebook: Tensor) -> None:
        """The codes that :meth:`prep` and :meth:`kernel` compute distances to (transposed, and their norms)."""
        self.ct = codebook.t().contiguous()
        self.c_norm = codebook.square().sum(1)

    def _rows(self, rows) -> tuple:
        if rows is None:
            return None, None, None, None, 0
        x, x_norm = rows
        return _ptr(x), _ptr(self.ct), _ptr(x_norm), _ptr(self.c_norm), x.shape[1]

    def exp_cols(self, m: Tensor, scale: float | None, a: Tensor, col: Tensor) -> None:
        """``M = exp(scale m)`` in place unless ``scale`` is None; ``col = M^T a`` (float64)."""
        self.lib.mmq_sk_exp_cols(
            _ptr(m), len(m), self.k, int(scale is not None), scale or 0.0, _ptr(a), _ptr(col), self.threads
        )

    def iterate(self, m: Tensor, b: Tensor, a: Tensor, n_global: float, col: Tensor) -> None:
        """``a = a / (N a (M b) + N 1e-8)`` in place, then ``col = M^T a`` (float64)."""
        self.lib.mmq_sk_iterate(_ptr(m), len(m), self.k, _ptr(b), _ptr(a), n_global, _ptr(col), self.threads)

    def update_b(self, b: Tensor, col: Tensor, b32: Tensor) -> None:
        """``b = b / (b col + 1e-8) / K`` in place (float64, as PyTorch rounds it) and ``b32`` its float32 copy."""
        self.lib.mmq_sk_update_b(_ptr(b), _ptr(col), _ptr(b32), self.k)

    def argmax(self, m: Tensor, b: Tensor, out: Tensor) -> None:
        """``out = argmax_k M[n, k] b_k`` (int64, first index on ties)."""
        self.lib.mmq_sk_argmax(_ptr(m), len(m), self.k, _ptr(b), _ptr(out), self.threads)

    def solve(
        self,
        m: Tensor,
        scale: float,
        a: Tensor,
        n_iters: int,
        n_global: float,
        col: Tensor,
        b: Tensor,
        b32: Tensor,
        out: Tensor,
    ) -> None:
        """Every pass after the first over ``m`` holding all rows, in one call: the second pass, the division by the
        total mass, ``n_iters`` code updates of ``b`` (float64, from ones; ``b32`` its float32 copy) with an
        iteration between each two, and ``out = argmax_k M[n, k] b_k``. ``col`` (float64, K) is scratch."""
        self.lib.mmq_sk_solve(
            _ptr(m),
            len(m),
            self.k,
            scale,
            _ptr(a),
            n_iters,
            n_global,
            _ptr(col),
            _ptr(b),
            _ptr(b32),
            _ptr(out),
            self.threads,
        )
