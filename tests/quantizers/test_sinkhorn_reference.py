"""Parity with the reference OptVQ code (github.com/zbr17/OptVQ, epsilon 10, 5 iterations, normalize "all") through
stored outputs: ``tests/fixtures/optvq_reference_sinkhorn.safetensors``, made by ``make_optvq_reference.py``; and
of the fast kernel (``sinkhorn_assign``) with the readable reference (``sinkhorn``), the test oracle."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mmquant.quantizers import sinkhorn, sinkhorn_assign, sinkhorn_plan
from mmquant.quantizers.sinkhorn_native import library

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "optvq_reference_sinkhorn.safetensors"
with safe_open(FIXTURE, "pt") as f:
    META = f.metadata()
CASES = list(json.loads(META["cases"]))
DATA = load_file(FIXTURE)
# the PyTorch sweeps and the compiled ones (sinkhorn_native.py; skipped where no C compiler builds them)
NATIVE = [False, pytest.param(True, marks=pytest.mark.skipif(library() is None, reason="compiled passes not built"))]


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("case", CASES)
def test_assignment_matches_reference(case, native, record_property):
    x, c, ref = DATA[f"{case}.x"], DATA[f"{case}.codebook"], DATA[f"{case}.indices"]
    ours = sinkhorn_assign(x, c, epsilon=float(META["epsilon"]), n_iters=int(META["n_iters"]), native=native)
    same = int((ours == ref).sum())
    report = f"{case}: {same}/{len(ref)} tokens ({same / len(ref):.2%}) get the reference's code"
    record_property("agreement", f"{same}/{len(ref)}")
    print(report)  # shown with pytest -s / -rP
    assert same >= 0.99 * len(ref), report


@pytest.mark.parametrize("case", CASES)
def test_plan_matches_reference(case):
    x, c = DATA[f"{case}.x"], DATA[f"{case}.codebook"]
    plan = sinkhorn_plan(x, c, epsilon=float(META["epsilon"]), n_iters=int(META["n_iters"]))
    torch.testing.assert_close(plan[:8], DATA[f"{case}.plan_rows"], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("case", CASES)
def test_chunked_mode_gives_the_buffered_indices(case, native):
    x, c = DATA[f"{case}.x"], DATA[f"{case}.codebook"]
    buffered = sinkhorn_assign(x, c, native=native)
    assert torch.equal(sinkhorn_assign(x, c, max_buffer_elements=4096, block_rows=33, native=native), buffered)


@pytest.mark.parametrize("case", CASES)
def test_readable_reference_is_the_reference_code(case):
    x, c = DATA[f"{case}.x"], DATA[f"{case}.codebook"]
    plan = sinkhorn(x, c, epsilon=float(META["epsilon"]), n_iters=int(META["n_iters"]))
    assert torch.equal(plan.argmax(1), DATA[f"{case}.indices"])
    torch.testing.assert_close(plan[:8], DATA[f"{case}.plan_rows"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("normalize", ["all", "dim"])
@pytest.mark.parametrize("case", CASES)
def test_kernel_gives_the_readable_reference_indices(case, normalize, native):
    x, c = DATA[f"{case}.x"], DATA[f"{case}.codebook"]
    oracle = sinkhorn(x, c, normalize=normalize).argmax(1)
    assert torch.equal(sinkhorn_assign(x, c, normalize=normalize, native=native), oracle)
    chunked = sinkhorn_assign(x, c, normalize=normalize, max_buffer_elements=4096, block_rows=33, native=native)
    assert torch.equal(chunked, oracle)
