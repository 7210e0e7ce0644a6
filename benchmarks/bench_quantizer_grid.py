"""Quantizer modules side by side over a grid of sizes and precisions: forward and forward+backward time and peak
extra memory, as ratios to the fastest nearest-neighbour baseline of the same size and precision, in one run.

    python benchmarks/bench_quantizer_grid.py --reference-repo PATH/TO/OptVQ --min_seconds 10  # full grid, ~29 min
    python benchmarks/bench_quantizer_grid.py --quick                            # N=4096 only, 2 repeats

Grid: N in {4096, 16384, 65536} tokens, K in {1024, 8192} codes, D in {16, 64} dims, float32 and bf16 autocast.
Methods (training mode, one head, features and codebook made once per size):

* ``nn``: mmquant's nearest-neighbour assignment alone, ``nn_cdist``: ``torch.cdist(x, c).argmin(1)`` (baselines);
* ``mmquant_vq``: mmquant's ``VectorQuantizer`` module (assignment, straight-through, losses, usage statistics);
* ``mmquant_optvq``: mmquant's ``SinkhornQuantizer`` (OptVQ: epsilon 10, 5 iterations, normalisation "all");
  both mmquant modules start from the codebook the assignments are given;
* ``vqp_vq``: vector-quantize-pytorch's ``VectorQuantize`` (EMA, k-means init off, as a user would start);
* ``mmquant_sinkhorn_assign``: the assignment of ``mmquant_optvq`` alone, ``sinkhorn_assign`` as the module calls it
  (forward only): the same work as ``reference_sinkhorn``, where the module also computes its losses, straight-through
  output and usage statistics;
* ``readable_sinkhorn``: mmquant's readable reference ``sinkhorn()`` (``quantizers/sinkhorn.py``) + argmax (forward
  only), the oracle the fast kernel of ``mmquant_optvq`` is tested against;
* ``reference_sinkhorn``: the reference OptVQ code's cdist + normalize + ``sinkhorn()`` + argmax (forward only).

Modules are timed forward and forward+backward (a backward of ``quantized.sum() + loss``); assignments forward
only. Times are medians of interleaved rounds after a warm-up: ``--repeats`` rounds, or more for a fast cell, as
many as fill ``--min_seconds`` (a round is timed by the warm-up; at most 50), so that a cell of a few milliseconds
is not the median of three noisy calls. Each round calls the methods in its own order (a seeded shuffle): a method's
time depends on what ran before it (a predecessor that streamed hundreds of MB leaves the caches full of its dirty
lines; one that ran the same work leaves them warm), and a fixed order would favour some methods in every round.
Each method's time in every round is kept (``rounds_ms``), so that a comparison can take the ratio within each
round, where a slow spell of the machine slows both sides; memory is the rise of the process's peak resident set
(VmHWM, reset through ``/proc/self/clear_refs``) during one call over the resident set before it.
``*_ratio`` columns divide by the fastest of ``nn``/``nn_cdist`` (forward) of the same size and precision. Results:
``benchmarks/results/bench_quantizer_grid.json`` with command, commit, machine and load average.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from bench_output import add_output_arguments, resolve_output, write_results  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser
from mmquant.quantizers import SinkhornQuantizer, VectorQuantizer, nearest_code, sinkhorn, sinkhorn_assign
from mmquant.training import command_line, git_commit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--n", default="4096,16384,65536", help="comma-separated numbers of vectors N")
    p.add_argument("--k", default="1024,8192", help="comma-separated codebook sizes K")
    p.add_argument("--d", default="16,64", help="comma-separated code dimensions D")
    p.add_argument("--dtypes", default="float32,bf16", help="comma-separated precisions (float32, bf16 autocast)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per cell at least (the median is reported)")
    p.add_argument(
        "--min_seconds",
        type=float,
        default=2.0,
        help="a cell's rounds fill at least this many seconds (up to 50 rounds): fast cells get more of them",
    )
    p.add_argument("--reference-repo", default=None, help="checkout or bare git mirror of github.com/zbr17/OptVQ")
    p.add_argument("--quick", action="store_true", help="N=4096 only and 2 repeats")
    add_output_arguments(p, "bench_quantizer_grid")
    args = resolve_output(p.parse_args(argv), "bench_quantizer_grid")
    if args.quick:
        args.n, args.repeats, args.min_seconds = "4096", 2, 0.0
    return args


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def _peak_extra_mb(fn) -> float:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark (Linux)
    base = _status_mb("VmRSS")
    fn()
    return _status_mb("VmHWM") - base


def _methods(c: torch.Tensor, reference):
    """name -> (callable(x, c, backward), has_backward), every mmquant module starting from the codebook ``c``."""
    k, d = c.shape
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=d, codebook_size=k, beta=0.25)
    optvq = SinkhornQuantizer(dim=d, codebook_size=k, beta=0.25, epsilon=10.0, n_iters=5, normalize="all")
    # the codebook the assignments are given (their own N(0, 1) draw from the global seed 0 repeated the features,
    # drawn from a generator seeded 0 too: a quarter of the tokens sat on codes, another work than the assignments')
    for module in (vq, optvq):
        module.embedding.weight.data.copy_(c)
    methods = {
        "nn": (lambda x, c, b: nearest_code(x, c), False),
        "nn_cdist": (lambda x, c, b: torch.cdist(x, c).argmin(1), False),
    }

    def module_call(module):
        def call(x, c, backward):
            x = x.detach().requires_grad_(backward)
            out = module(x)
            if backward:
                (out.quantized.float().sum() + out.loss).backward()
            return out.indices

        return call

    vq.train()
    optvq.train()
    methods["mmquant_vq"] = (module_call(vq), True)
    methods["mmquant_optvq"] = (module_call(optvq), True)
    try:
        from vector_quantize_pytorch import VectorQuantize

        from peer_quantizers import PeerQuantizer

        peer = PeerQuantizer(VectorQuantize(dim=d, codebook_size=k, rotation_trick=False), k, "vq").train()
        methods["vqp_vq"] = (module_call(peer), True)
    except ImportError:
        print("vector-quantize-pytorch is not installed (pip install 'mmquant[bench]'): vqp_vq is skipped")
    methods["mmquant_sinkhorn_assign"] = (lambda x, c, b: sinkhorn_assign(x, c, check_finite=False), False)
    methods["readable_sinkhorn"] = (lambda x, c, b: sinkhorn(x, c).argmax(1), False)
    if reference is not None:
        methods["reference_sinkhorn"] = (lambda x, c, b: reference(x, c)[1], False)
    return methods


def _run(fn, x, c, backward, autocast):
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with ctx:
        fn(x, c, backward)


def main(args) -> dict:
    load_start = list(os.getloadavg())
    reference, ref_commit = None, None
    if args.reference_repo:
        from reference_optvq import load_reference

        reference, ref_commit = load_reference(args.reference_repo)
    rows = []
    sizes = itertools.product(*(map(int, s.split(",")) for s in (args.n, args.k, args.d)))
    for (n, k, d), dtype in itertools.product(list(sizes), args.dtypes.split(",")):
        autocast = dtype == "bf16"
        g = torch.Generator().manual_seed(0)
        x, c = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
        methods = _methods(c, reference)
        jobs = [(name, False) for name in methods] + [(name, True) for name, (_, bw) in methods.items() if bw]
        warm_start = time.perf_counter()
        for name, backward in jobs:  # warm-up (and the length of one round)
            _run(methods[name][0], x, c, backward, autocast)
        round_seconds = time.perf_counter() - warm_start
        rounds = min(50, max(args.repeats, math.ceil(args.min_seconds / max(round_seconds, 1e-6))))
        times = {job: [] for job in jobs}
        order = random.Random(0)
        for _ in range(rounds):  # interleaved rounds, each in its own order (no method always follows the same one)
            for job in order.sample(jobs, len(jobs)):
                t0 = time.perf_counter()
                _run(methods[job[0]][0], x, c, job[1], autocast)
                times[job].append((time.perf_counter() - t0) * 1e3)
        memory = {}
        for job in jobs:
            fn = methods[job[0]][0]
            memory[job] = _peak_extra_mb(lambda: _run(fn, x, c, job[1], autocast))  # noqa: B023 (called at once)
        baseline = min(statistics.median(times[("nn", False)]), statistics.median(times[("nn_cdist", False)]))
        row = {"N": n, "K": k, "D": d, "dtype": dtype, "rounds": rounds, "baseline_ms": round(baseline, 3)}
        row["methods"] = {}
        for (name, backward), t in times.items():
            key = f"{name}{'_fwd_bwd' if backward else '_fwd'}"
            row["methods"][key] = {
                "ms": round(statistics.median(t), 3),
                "ratio": round(statistics.median(t) / baseline, 3),
                "peak_extra_mb": round(memory[(name, backward)], 1),
                "rounds_ms": [round(v, 3) for v in t],  # round by round: ratios can be paired within a round
            }
        rows.append(row)
        print(
            f"N={n:6d} K={k:5d} D={d:3d} {dtype:8s} "
            + " ".join(f"{key}={v['ratio']:.2f}x" for key, v in row["methods"].items()),
            flush=True,
        )
    result = {
        "benchmark": "quantizer_grid",
        "command": command_line(),
        "commit": git_commit(HERE),
        "reference_commit": ref_commit,
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(), "cpus": os.cpu_count()},
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "torch": torch.__version__,
        "repeats": args.repeats,
        "min_seconds": args.min_seconds,
        "rows": rows,
    }
    write_results(result, args.output)
    return result


if __name__ == "__main__":
    main(parse_args())
