"""How much of the reference OptVQ ``sinkhorn()``'s time is the C allocator's: the reference against mmquant's Sinkhorn
assignment in two child processes, one with glibc's default allocator and one that keeps freed memory, side by side.

    python benchmarks/bench_reference_allocator.py --reference-repo PATH/TO/OptVQ          # N=4096 cells, ~1 min

Without ``--reference-repo`` the compared function is mmquant's readable ``sinkhorn()`` (``quantizers/sinkhorn.py``,
the test oracle), which allocates its N x K temporaries the same way.

The reference allocates several N x K temporaries per call (~16 MiB each at N=4096, K=1024). With glibc's defaults a
block that size may be served by ``mmap`` and returned at ``free``, or taken from a heap that is trimmed back to the
system, depending on the process's allocation history (the dynamic mmap threshold), so each call may page-fault on
every 4 KiB it touches. ``retain`` sets ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` so that freed
blocks stay in the heap: no page faults after the warm-up. mmquant keeps its N x K buffer as a workspace between
calls, so it does not fault in either mode.

Per cell and mode: median times over interleaved rounds, the reference/ours ratio paired within each round (median
of the per-round ratios), and minor page faults per call (``getrusage``). ``ours`` is
``sinkhorn_assign`` (the same work as the reference: distances, normalisation, Sinkhorn, argmax) and ``module`` the
training-mode ``SinkhornQuantizer`` forward (as ``bench_quantizer_grid.py`` times it); ``ours_warm`` the same call
again right after ``ours``, its N x K buffer still in cache (every other call follows a different method, as in the
grid's interleaved rounds, and finds the cache holding that method's memory); ``cdist`` the distances alone
(``torch.cdist``: the matrix product both compute first, with the square root ours does without).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_output import add_output_arguments, resolve_output, write_results  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser  # noqa: E402
from mmquant.training import command_line, git_commit  # noqa: E402

# glibc tunables that keep freed blocks in the heap (no mmap for large blocks, no trimming)
RETAIN_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str((1 << 32) - 1)}
MODES = ("default", "retain")


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--reference-repo", default=None, help="checkout or bare git mirror of github.com/zbr17/OptVQ")
    p.add_argument("--n", type=int, default=4096, help="number of vectors N")
    p.add_argument("--k", type=int, default=1024, help="codebook size K")
    p.add_argument("--d", default="16,64", help="comma-separated code dimensions D")
    p.add_argument("--dtypes", default="float32,bf16", help="comma-separated precisions (float32, bf16 autocast)")
    p.add_argument("--rounds", type=int, default=30, help="interleaved timed rounds per cell")
    p.add_argument("--threads", type=int, default=2, help="torch threads in each child")
    p.add_argument("--child", choices=MODES, default=None, help=argparse.SUPPRESS)
    add_output_arguments(p, "bench_reference_allocator")
    return resolve_output(p.parse_args(argv), "bench_reference_allocator")


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def child(args) -> dict:
    """One mode's cells, timed in this process, and the reference's commit."""
    from mmquant.quantizers import SinkhornQuantizer, sinkhorn
    from mmquant.quantizers.sinkhorn_kernel import sinkhorn_assign

    torch.set_num_threads(args.threads)
    if args.reference_repo:
        from reference_optvq import load_reference

        reference, reference_commit = load_reference(args.reference_repo)
    else:
        reference, reference_commit = (lambda x, c: sinkhorn(x, c).argmax(1)), None
    rows = []
    for d in map(int, args.d.split(",")):
        for dtype in args.dtypes.split(","):
            g = torch.Generator().manual_seed(0)
            x, c = torch.randn(args.n, d, generator=g), torch.randn(args.k, d, generator=g)
            module = SinkhornQuantizer(dim=d, codebook_size=args.k, beta=0.25, epsilon=10.0, n_iters=5).train()
            module.embedding.weight.data.copy_(c)  # the same work as the assignments (see bench_quantizer_grid.py)
            calls = {
                "reference": lambda x=x, c=c: reference(x, c),
                "ours": lambda x=x, c=c: sinkhorn_assign(x, c),
                "ours_warm": lambda x=x, c=c: sinkhorn_assign(x, c),  # right after "ours": its buffer in cache
                "module": lambda x=x, m=module: m(x),
                "cdist": lambda x=x, c=c: torch.cdist(x, c),  # the distances both start from
            }
            autocast = dtype == "bf16"
            ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
            times = {k: [] for k in calls}
            faults = dict.fromkeys(calls, 0)
            with torch.no_grad():
                for _ in range(3):  # warm-up (the allocator settles)
                    for fn in calls.values():
                        with ctx():
                            fn()
                for _ in range(args.rounds):
                    for name, fn in calls.items():
                        f0, t0 = _faults(), time.perf_counter()
                        with ctx():
                            fn()
                        times[name].append((time.perf_counter() - t0) * 1e3)
                        faults[name] += _faults() - f0
            row = {"N": args.n, "K": args.k, "D": d, "dtype": dtype, "methods": {}}
            for name, t in times.items():
                row["methods"][name] = {
                    "ms": round(statistics.median(t), 3),
                    "minor_faults_per_call": round(faults[name] / args.rounds, 1),
                    "rounds_ms": [round(v, 3) for v in t],
                }
            for name in ("ours", "ours_warm", "module"):  # paired within each round
                ratios = [r / o for r, o in zip(times["reference"], times[name], strict=True)]
                row[f"reference_over_{name}"] = round(statistics.median(ratios), 3)
            rows.append(row)
    return {"rows": rows, "reference_commit": reference_commit}


def main(args) -> dict:
    if args.child:
        print(json.dumps(child(args)))
        return {}
    load_start = list(os.getloadavg())
    argv = [sys.executable, str(Path(__file__).resolve()), "--n", str(args.n), "--k", str(args.k), "--d", args.d]
    argv += ["--dtypes", args.dtypes, "--rounds", str(args.rounds), "--threads", str(args.threads)]
    argv += ["--reference-repo", args.reference_repo] if args.reference_repo else []
    modes, reference_commit = {}, None
    for mode in MODES:
        env = {**os.environ, **(RETAIN_ENV if mode == "retain" else {})}
        if mode == "default":
            for key in RETAIN_ENV:
                env.pop(key, None)
        out = subprocess.run([*argv, "--child", mode], env=env, check=True, capture_output=True, text=True)
        timed = json.loads(out.stdout.strip().splitlines()[-1])
        modes[mode], reference_commit = timed["rows"], timed["reference_commit"]
        for r in modes[mode]:
            m = r["methods"]
            print(
                f"{mode:8s} N={r['N']} K={r['K']} D={r['D']:3d} {r['dtype']:8s} reference {m['reference']['ms']:7.2f} "
                f"ms ({m['reference']['minor_faults_per_call']:8.1f} faults/call), ours {m['ours']['ms']:6.2f} ms, "
                f"module {m['module']['ms']:6.2f} ms; reference/ours {r['reference_over_ours']:.2f}x, "
                f"reference/module {r['reference_over_module']:.2f}x",
                flush=True,
            )
    result = {
        "benchmark": "reference_allocator",
        "command": command_line(),
        "commit": git_commit(HERE),
        "machine": {"platform": platform.platform(), "threads": args.threads, "cpus": os.cpu_count()},
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "torch": torch.__version__,
        "reference": "the reference OptVQ sinkhorn()" if args.reference_repo else "mmquant's readable sinkhorn()",
        "reference_commit": reference_commit,
        "retain_env": RETAIN_ENV,
        "modes": modes,
    }
    write_results(result, args.output)
    return result


if __name__ == "__main__":
    main(parse_args())
