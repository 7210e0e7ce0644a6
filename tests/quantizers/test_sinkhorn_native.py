"""The compiled CPU passes of the Sinkhorn kernel (``sinkhorn_native.py``): the same assignment as the readable
reference and as the PyTorch passes, at any thread count and buffer size, deterministic, built once into a cache, and
a clean fallback where they cannot be built."""

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmquant.quantizers import sinkhorn, sinkhorn_assign, sinkhorn_kernel
from mmquant.quantizers.functional import _cdist_operands, check_features
from mmquant.quantizers.sinkhorn_kernel import _DIRECT_MAX_DIM, _native_passes, _NativeKernel
from mmquant.quantizers.sinkhorn_native import NativePasses, library, max_magnitude

pytestmark = pytest.mark.skipif(library() is None, reason="no C compiler with OpenMP: compiled passes not built")


def _data(n, k, d, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale, torch.randn(k, d, generator=g) * scale


# both distance paths: computed in the compiled sweep (small D) and by the GEMM
@pytest.mark.parametrize("d", [1, 2, _DIRECT_MAX_DIM, _DIRECT_MAX_DIM + 1, 64])
@pytest.mark.parametrize("normalize", ["all", "dim", "none"])
def test_native_gives_the_oracle_indices(d, normalize):
    x, c = _data(700, 96, d, seed=d)
    oracle = sinkhorn(x, c, normalize=normalize).argmax(1)
    native = sinkhorn_assign(x, c, normalize=normalize, native=True)
    assert torch.equal(native, oracle)
    assert torch.equal(sinkhorn_assign(x, c, normalize=normalize, native=False), native)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_any_thread_count_and_buffer_gives_the_same_indices(threads):
    x, c = _data(1500, 200, 2, seed=1)
    oracle = sinkhorn(x, c).argmax(1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dense = sinkhorn_assign(x, c, native=True)
        assert torch.equal(dense, oracle)
        # recomputed blocks past the buffer limit, odd block sizes, a single row per block
        assert torch.equal(
            sinkhorn_assign(x, c, native=True, max_buffer_elements=1500 * 200 // 3, block_rows=97), dense
        )
        assert torch.equal(sinkhorn_assign(x, c, native=True, block_rows=1), dense)
        assert torch.equal(sinkhorn_assign(x, c, native=True), dense)  # deterministic
    finally:
        torch.set_num_threads(before)


def test_native_handles_ties_and_far_codes_like_the_oracle():
    x, c = _data(300, 50, 3, seed=2)
    c[7] = c[3]  # a duplicated code: ties go to the first index, as torch.argmax
    c[10] += 40.0  # a code far from every token still receives its 1/K of the mass
    x[:5] = c[3]
    oracle = sinkhorn(x, c).argmax(1)
    assert torch.equal(sinkhorn_assign(x, c, native=True), oracle)


def test_subnormal_row_factors_give_the_pytorch_assignment():
    """Tokens on codes and tokens far from every code: the far tokens' row factors ``a_n`` fall below FLT_MIN, where
    the compiled passes flush them to zero (a subnormal operand costs Intel cores a microcode assist per operation)
    and the PyTorch passes keep them; the assignments must not differ."""
    x, c = _data(1200, 256, 64, seed=4)
    x[:256] = c  # distance 0 for these, ~10 (std 1) for the others: lam (rowmin - min) ~ 90 for the far ones
    d = torch.cdist(x, c)
    row_min = d.amin(1)
    a = torch.exp(-10.0 / d.std() * (row_min - row_min.min()))
    assert int(((a > 0) & (a < torch.finfo(torch.float32).tiny)).sum()) > 100  # the regime is reached
    native = sinkhorn_assign(x, c, native=True)
    assert torch.equal(native, sinkhorn_assign(x, c, native=False))
    # the oracle's plan rows of far tokens underflow to a few equal tiny values (its argmax then takes the first);
    # ours takes one of the entries holding the row's maximum
    plan = sinkhorn(x, c)
    live = plan.amax(1) > 0
    assert live.sum() > 1000
    assert torch.equal(plan[live, native[live]], plan[live].amax(1))


def test_loading_and_running_the_passes_keep_the_callers_subnormals():
    """The library is loaded (at this module's import) and run: torch on this thread still produces subnormals."""
    assert library() is not None
    sinkhorn_assign(*_data(300, 40, 3), native=True)
    assert 0 < float(torch.exp(torch.tensor(-100.0))) < torch.finfo(torch.float32).tiny


def test_bf16_input_and_one_token():
    x, c = _data(64, 16, 4, seed=3)
    assert torch.equal(sinkhorn_assign(x.bfloat16(), c, native=True), sinkhorn_assign(x.bfloat16(), c, native=False))
    assert sinkhorn_assign(x[:1], c, native=True).shape == (1,)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_build_is_cached_and_the_fallback_is_clean(tmp_path):
    code = """
        import torch
        from mmquant.quantizers import sinkhorn_assign
        from mmquant.quantizers.sinkhorn_native import library
        x, c = torch.randn(200, 2), torch.randn(32, 2)
        print(library() is not None, sinkhorn_assign(x, c).shape[0])
        try:
            sinkhorn_assign(x, c, native=True)
            print("native ok")
        except RuntimeError as err:
            print("error:", err)
    """
    cache = tmp_path / "cache"
    first = _run(code, MMQUANT_NATIVE_CACHE=str(cache))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[:2] == ["True 200", "native ok"]
    built = sorted(cache.glob("sinkhorn_native-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    again = _run(code, MMQUANT_NATIVE_CACHE=str(cache))
    assert again.returncode == 0 and built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert sorted(p.name for p in cache.iterdir()) == [built[0].name]  # no temporary files left

    # switched off, or no compiler: PyTorch passes, and native=True says why and what to do
    for env in ({"MMQUANT_NATIVE": "0"}, {"CC": "", "PATH": str(tmp_path)}):
        off = _run(code, MMQUANT_NATIVE_CACHE=str(tmp_path / "empty"), **env)
        assert off.returncode == 0, off.stderr
        lines = off.stdout.split("\n")
        assert lines[0] == "False 200"
        assert lines[1].startswith("error: native=True") and "native=None" in lines[1]


def test_native_is_for_cpu_tensors():
    assert _native_passes(torch.device("cuda"), 4, None) is None  # auto: a GPU keeps the PyTorch passes
    with pytest.raises(ValueError, match="native=True"):
        _native_passes(torch.device("cuda"), 4, True)


@pytest.mark.parametrize("native", [True, False])
def test_empty_inputs(native):
    c = torch.randn(8, 4)
    assert sinkhorn_assign(torch.randn(0, 4), c, native=native).shape == (0,)
    with pytest.raises(ValueError, match="codebook is empty"):
        sinkhorn_assign(torch.randn(5, 4), c[:0], native=native)
    with pytest.raises(ValueError, match="codebook is empty"):
        sinkhorn(torch.randn(5, 4), c[:0])


@pytest.mark.parametrize("k", [1, 15, 16, 37, 1024])
def test_argmax_pass_takes_the_first_maximum_like_torch(k):
    """The argmax sweep keeps a maximum per lane: ties within a lane, across lanes and in the tail past the last
    whole group of lanes all go to the first index, as ``torch.argmax``."""
    passes = NativePasses(library(), k)
    g = torch.Generator().manual_seed(k)
    m = torch.randint(0, 4, (64, k), generator=g).float()  # few distinct values: many ties
    b = torch.ones(k)
    out = torch.empty(64, dtype=torch.long)
    passes.argmax(m, b, out)
    assert torch.equal(out, (m * b).argmax(1))
    m[:, -1] = 9.0  # the maximum only in the last (tail) column
    passes.argmax(m, b, out)
    assert torch.equal(out, torch.full((64,), k - 1))


def test_code_update_is_pytorchs_to_the_bit():
    """``update_b`` (the code step of each iteration, compiled with -ffast-math around it) rounds every operation
    as the PyTorch loop does: the same float64 ``b`` and its float32 copy, over values spanning many magnitudes."""
    k = 1024
    g = torch.Generator().manual_seed(3)
    b = torch.rand(k, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(-6, 6, (k,), generator=g)
    col = torch.rand(k, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(-9, 3, (k,), generator=g)
    expected = b / (b * col + 1e-8) / k
    b32 = torch.empty(k)
    NativePasses(library(), k).update_b(b, col, b32)
    assert torch.equal(b, expected)
    assert torch.equal(b32, expected.float())


@pytest.mark.parametrize("d", [_DIRECT_MAX_DIM + 1, 64])
def test_compiled_row_operand_is_the_cdist_operand(d):
    """The rows' GEMM operand written by one compiled sweep is PyTorch's ``[-2x, |x|^2, 1]`` to the bit, so the
    distances still round as ``torch.cdist``'s."""
    x, c = _data(777, 10, d, seed=5, scale=3.0)
    assert torch.equal(NativePasses(library(), 10).row_operand(x), _cdist_operands(x, c)[0])


def _sequential_fma(xa: torch.Tensor, ca: torch.Tensor) -> torch.Tensor:
    """``xa @ ca.T`` summed column by column from 0, each step one fused multiply-add rounded to float32 (the
    products are exact in float64; the float64 sum is rounded to float32 at every step)."""
    acc = torch.zeros(xa.shape[0], ca.shape[0], dtype=torch.float32)
    for j in range(xa.shape[1]):
        acc = (acc.double() + xa[:, j, None].double() * ca[None, :, j].double()).float()
    return acc


needs_gemm = pytest.mark.skipif(
    library() is None or not NativePasses(library(), 1).has_gemm, reason="the compiled GEMM needs AVX-512"
)


@needs_gemm
@pytest.mark.parametrize("n, k, d", [(61, 70, 9), (125, 200, 16), (64, 1024, 64)])
def test_compiled_gemm_sums_the_operands_in_order(n, k, d):
    """The compiled distance GEMM (codes not a multiple of its 64-code panels, rows not of its 6-row tiles) gives the
    sequential fused multiply-add sums of the operands, to the bit; with the first pass fused, that pass's output
    on those distances."""
    x, c = _data(n, k, d, seed=k, scale=3.0)
    passes = NativePasses(library(), k)
    xa, ca = _cdist_operands(x, c)
    expected = _sequential_fma(xa, ca)
    out = torch.empty(n, k)
    passes.gemm_prep(out, passes.row_operand(x), passes.pack_codes(c))
    assert torch.equal(out, expected)
    fused = torch.empty(n, k)
    stats = [torch.empty(n), torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)]
    passes.gemm_prep(fused, passes.row_operand(x), passes.pack_codes(c), *stats)
    separate = [torch.empty(n), torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)]
    passes.prep(expected, *separate)
    assert torch.equal(fused, expected)
    assert all(torch.equal(a, b) for a, b in zip(stats, separate))


@needs_gemm
@pytest.mark.parametrize("d", [16, 64])
def test_compiled_gemm_and_torch_mm_paths_give_the_same_assignment(monkeypatch, d):
    """Where the GEMM is not compiled (no AVX-512) torch.mm computes the distances: the same indices, also for blocks
    recomputed past the buffer limit."""
    x, c = _data(1000, 300, d, seed=d)
    with_gemm = sinkhorn_assign(x, c, native=True)
    assert torch.equal(with_gemm, sinkhorn(x, c).argmax(1))
    recomputed = sinkhorn_assign(x, c, native=True, max_buffer_elements=1000 * 300 // 3, block_rows=97)
    assert torch.equal(recomputed, with_gemm)
    original = sinkhorn_kernel._native_passes

    def without_gemm(*args):
        passes = original(*args)
        passes.has_gemm = False
        return passes

    monkeypatch.setattr(sinkhorn_kernel, "_native_passes", without_gemm)
    assert torch.equal(sinkhorn_assign(x, c, native=True), with_gemm)
    assert torch.equal(
        sinkhorn_assign(x, c, native=True, max_buffer_elements=1000 * 300 // 3, block_rows=97), with_gemm
    )


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, k, d", [(1501, 200, 2), (1026, 96, 64), (5, 16, 9)])
def test_one_call_solve_gives_the_per_pass_assignment(monkeypatch, threads, n, k, d):
    """Every pass after the first in one compiled call (the default when the buffer holds every row) gives the
    indices and code factors of the same passes called one by one."""
    x, c = _data(n, k, d, seed=n)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    kernels = []
    solve = _NativeKernel.solve
    monkeypatch.setattr(_NativeKernel, "solve", lambda self, *a: kernels.append(self) or solve(self, *a))
    try:
        fused = sinkhorn_assign(x, c, native=True)
        b_fused = kernels[-1].b64.clone()
        monkeypatch.setattr(_NativeKernel, "solve", lambda self, *a: kernels.append(self) and False)
        per_pass = sinkhorn_assign(x, c, native=True)
        b_per_pass = kernels[-1].b64
    finally:
        torch.set_num_threads(before)
    assert torch.equal(fused, per_pass)
    torch.testing.assert_close(b_fused, b_per_pass, rtol=1e-12, atol=0)


def test_compiled_max_magnitude_finds_nan_inf_and_the_peak():
    """The compiled check of the quantizers' input: the largest magnitude, NaN above Inf above every finite value
    (integer comparisons, which -ffast-math cannot drop), and a clear error from ``check_features`` either way."""
    assert library() is not None  # loaded: check_features takes the compiled sweep
    x = torch.randn(3000, 7)
    x[1234, 3] = -77.5
    assert max_magnitude(x) == 77.5 == float(x.abs().amax())
    x[17, 0] = -math.inf
    assert max_magnitude(x) == math.inf
    x[2999, 6] = math.nan
    assert math.isnan(max_magnitude(x))
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        check_features(x, "x")
    with pytest.raises(ValueError, match="largest magnitude 2e\\+12"):
        check_features(torch.full((5, 3), -2e12), "x")
    assert max_magnitude(x.double()) is None and max_magnitude(x.t()) is None  # PyTorch checks these
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        check_features(x.t(), "x")


def test_compiled_exp_is_within_two_ulp():
    """The second pass's exponential (AVX-512: table and cubic; else kexp): ``M = exp(scale m)`` within 2 ulp of the
    float64 exponential of the float32 argument, for every argument from 0 to the end of the normal range."""
    m = torch.linspace(0.0, 87.0, 1 << 18).view(64, -1)  # rows of a block: 4096 codes each
    scale = -1.0
    expected = torch.exp((scale * m).double())
    got = m.clone()
    NativePasses(library(), m.shape[1]).exp_cols(
        got, scale, torch.ones(64), torch.empty(m.shape[1], dtype=torch.float64)
    )
    ulp = torch.ldexp(torch.ones_like(expected), torch.frexp(expected).exponent - 24)  # float32's at each value
    assert ((got.double() - expected).abs() <= 2 * ulp).all()
    assert got[0, 0] == 1.0 and (got > 0).all()
