"""Nearest-neighbour assignment vs mmquant's Sinkhorn (OptVQ) assignment vs the readable reference ``sinkhorn()``
(and the reference code's, given its repository), measured side by side in one run, float32 on CPU; and the training
step of ``optvq-mnist`` with Sinkhorn vs the same model with nearest-neighbour VQ.

    python benchmarks/bench_quantizers.py --reference-repo PATH/TO/OptVQ   # a checkout or a bare git mirror
    # the tracked results (from a clean commit on an idle machine):
    python benchmarks/bench_quantizers.py --reference-repo PATH/TO/OptVQ \
        --results_file benchmarks/results/bench_quantizers.json

``sinkhorn`` is ``sinkhorn_assign`` as training calls it (the compiled CPU passes of ``sinkhorn_native`` where a C
compiler builds them; ``native_passes`` in the results says whether it did), ``sinkhorn_torch`` the same algorithm in
PyTorch operations (``native=False``). ``compiled_gemm_equals_torch_mm`` (per size): whether the distance GEMM the
compiled passes use on an AVX-512 CPU gives torch.mm's products to the bit on this machine (None without it).

Per size (N tokens, K codes, D dims): median (and min) wall time of each over ``--repeats`` runs after two warm-up
runs, the methods interleaved run by run so that other load on the machine hits them alike; the ratios Sinkhorn/NN
and reference/ours; the agreement of our assignment with the reference's (tokens with the same code); and each
method's peak extra memory: the rise of the process's peak resident set (VmHWM) during one call over the resident
set just before it, in a fresh subprocess per method and size, after one small warm-up call (so that loading BLAS
and starting threads is not counted). Results go to ``benchmarks/results/bench_quantizers.json`` with the command,
commit, torch version, threads, machine and load average (timings on a loaded machine are not comparable).

Training step (``--step-repeats``, 0 skips it): the ``optvq-mnist`` model (4 heads of dimension 2, 1024 codes) with
its Sinkhorn quantizer and the same model with ``type="vq"`` (nearest neighbour, same heads and affine codebook),
one AdamW step each (forward, backward, optimizer step) on a batch of ``--step-batch`` 32x32 images, on one thread,
interleaved step by step; ``step_ratio`` is the median Sinkhorn step over the median VQ step.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench_output import add_output_arguments, resolve_output, write_results  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser
from mmquant.models.optvq import OptVQModel
from mmquant.models.registry import get_config
from mmquant.quantizers import nearest_code, sinkhorn, sinkhorn_assign
from mmquant.quantizers.functional import _code_operand
from mmquant.quantizers.sinkhorn_native import NativePasses, library
from mmquant.training import command_line

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = "4096x1024x64,16384x1024x64,16384x8192x16,65536x1024x16,65536x8192x16"


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated NxKxD")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per method (the median is reported)")
    p.add_argument("--reference-repo", default=None, help="checkout or bare git mirror of github.com/zbr17/OptVQ")
    p.add_argument("--step-repeats", type=int, default=15, help="timed optvq-mnist training steps per quantizer")
    p.add_argument("--step-batch", type=int, default=128, help="images per optvq-mnist training step")
    add_output_arguments(p, "bench_quantizers")
    p.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    p.add_argument("--memory-probe", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    return resolve_output(p.parse_args(argv), "bench_quantizers")


def _inputs(n, k, d):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)


def _methods(reference):
    methods = {
        "nn": lambda x, c: nearest_code(x, c),  # the library's nearest-neighbour assignment (the baseline)
        "nn_cdist": lambda x, c: torch.cdist(x, c).argmin(1),  # as usually written (and as the prototype measured)
        "sinkhorn": lambda x, c: sinkhorn_assign(x, c),  # the compiled passes where they build (native=None)
        "sinkhorn_torch": lambda x, c: sinkhorn_assign(x, c, native=False),  # the same in PyTorch operations
        "readable": lambda x, c: sinkhorn(x, c).argmax(1),  # the readable reference, mmquant.quantizers.sinkhorn
    }
    if reference is not None:
        methods["reference"] = lambda x, c: reference(x, c)[1]
    return methods


def _gemm_equals_torch_mm(x, c):
    """Whether the compiled distance GEMM (AVX-512) gives torch.mm's products to the bit here; None without it."""
    lib = library()
    if lib is None:
        return None
    passes = NativePasses(lib, c.shape[0])
    if not passes.has_gemm:
        return None
    xa = passes.row_operand(x)
    out = torch.empty(x.shape[0], c.shape[0])
    passes.gemm_prep(out, xa, passes.pack_codes(c))
    return torch.equal(out, torch.mm(xa, _code_operand(c).t()))


def _time_ms(methods, x, c, repeats, warmup=2):
    """Wall times (ms) of each method: ``warmup`` rounds, then ``repeats`` rounds, each round running every method
    once (interleaved, so that load from elsewhere on the machine is shared fairly)."""
    for _ in range(warmup):
        for fn in methods.values():
            fn(x, c)
    times = {name: [] for name in methods}
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn(x, c)
                times[name].append((time.perf_counter() - t0) * 1e3)
    finally:
        gc.enable()
    return times


def _status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_probe(method, size, reference_repo):
    reference = _load_reference(reference_repo)[0] if method == "reference" else None
    n, k, d = map(int, size.split("x"))
    fn = _methods(reference)[method]
    fn(*_inputs(256, 64, d))  # load BLAS, start the threads: not part of the method's memory
    x, c = _inputs(n, k, d)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS high-water mark (Linux)
    base = _status_mb("VmRSS")
    fn(x, c)
    print(json.dumps({"peak_extra_mb": _status_mb("VmHWM") - base}))


def _measure_memory(method, size, reference_repo):
    cmd = [sys.executable, __file__, "--memory-probe", method, size]
    if reference_repo:
        cmd += ["--reference-repo", reference_repo]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mb"]


def _load_reference(repo):
    if not repo:
        return None, None
    sys.path.insert(0, str(HERE))
    from reference_optvq import load_reference

    try:
        return load_reference(repo)
    except (ImportError, OSError, subprocess.CalledProcessError) as err:
        print(f"could not load the reference from {repo} ({err!r}): it is skipped")
        return None, None


def _optvq_mnist(quantizer_type: str) -> OptVQModel:
    """``optvq-mnist`` as registered (Sinkhorn), or the same model with nearest-neighbour VQ."""
    torch.manual_seed(0)
    config = get_config("optvq-mnist")
    q = dict(config.quantizer_config)
    if quantizer_type == "vq":
        q = {key: v for key, v in q.items() if key not in ("epsilon", "n_iters", "normalize")} | {"type": "vq"}
    config.quantizer_config = q
    return OptVQModel(config).train()


def _train_step_ratio(repeats: int, batch: int, warmup: int = 2) -> dict:
    """Median training-step time of ``optvq-mnist`` with Sinkhorn and with VQ, on one thread, interleaved."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = {name: _optvq_mnist(name) for name in ("vq", "sinkhorn")}
        optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
        images = torch.rand(batch, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
        times = {name: [] for name in models}
        tokens = models["sinkhorn"](images).indices.numel()  # tokens x heads: the N of the assignment
        for step in range(warmup + repeats):
            for name, model in models.items():
                t0 = time.perf_counter()
                model(images).loss.backward()
                optimizers[name].step()
                optimizers[name].zero_grad()
                if step >= warmup:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(threads)
    ms = {name: statistics.median(t) for name, t in times.items()}
    return {
        "model": "optvq-mnist (4 heads of dimension 2, 1024 codes), AdamW step",
        "batch": batch,
        "threads": 1,
        "assignment_size": f"N={tokens}, K={models['sinkhorn'].config.quantizer_config['codebook_size']}, "
        f"D={models['sinkhorn'].quantizer.codebook_dim}",
        "ms": ms,
        "ms_min": {name: min(t) for name, t in times.items()},
        "step_ratio": ms["sinkhorn"] / ms["vq"],
    }


def _commit():
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ":/src"], cwd=HERE, capture_output=True, text=True
        )
        return rev.stdout.strip() + ("+uncommitted-src-changes" if dirty.stdout.strip() else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "uncommitted"


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(args):
    if args.memory_probe:
        return _memory_probe(*args.memory_probe, args.reference_repo)
    load_start = list(os.getloadavg())
    reference, ref_commit = _load_reference(args.reference_repo)
    if reference is None:
        print("no --reference-repo given: the reference sinkhorn() is skipped")
    methods = _methods(reference)
    rows = []
    header = f"{'N':>6} {'K':>5} {'D':>3} | {'NN ms':>7} {'ours ms':>8} {'ref ms':>8} | "
    header += f"{'ours/NN':>7} {'ours/cdistNN':>12} {'readable/ours':>13} {'ref/ours':>8} | agree"
    print(header + (" | extra MB: " + " / ".join(methods) if not args.no_memory else ""))
    for size in args.sizes.split(","):
        n, k, d = map(int, size.split("x"))
        x, c = _inputs(n, k, d)
        times = _time_ms(methods, x, c, args.repeats)
        ms = {name: statistics.median(t) for name, t in times.items()}
        row = {"N": n, "K": k, "D": d, "ms": ms, "ms_min": {name: min(t) for name, t in times.items()}}
        row["sinkhorn_over_nn"] = ms["sinkhorn"] / ms["nn"]
        row["sinkhorn_over_nn_cdist"] = ms["sinkhorn"] / ms["nn_cdist"]
        row["sinkhorn_torch_over_sinkhorn"] = ms["sinkhorn_torch"] / ms["sinkhorn"]
        row["readable_over_sinkhorn"] = ms["readable"] / ms["sinkhorn"]
        row["compiled_gemm_equals_torch_mm"] = _gemm_equals_torch_mm(x, c)
        if reference is not None:
            row["reference_over_sinkhorn"] = ms["reference"] / ms["sinkhorn"]
            same = int((methods["sinkhorn"](x, c) == methods["reference"](x, c)).sum())
            row["agreement_with_reference"] = same / n
            row["tokens_with_reference_code"] = f"{same}/{n}"
        if not args.no_memory:
            row["peak_extra_mb"] = {name: _measure_memory(name, size, args.reference_repo) for name in methods}
        rows.append(row)
        ref_ms = f"{ms['reference']:8.1f}" if reference is not None else f"{'-':>8}"
        ratio = f"{row['reference_over_sinkhorn']:7.2f}x" if reference is not None else f"{'-':>8}"
        agree = f"{row['agreement_with_reference']:8.4%}" if reference is not None else "       -"
        line = f"{n:>6} {k:>5} {d:>3} | {ms['nn']:7.1f} {ms['sinkhorn']:8.1f} {ref_ms} | "
        line += f"{row['sinkhorn_over_nn']:6.2f}x {row['sinkhorn_over_nn_cdist']:11.2f}x "
        line += f"{row['readable_over_sinkhorn']:12.2f}x {ratio} | {agree}"
        if not args.no_memory:
            mem = row["peak_extra_mb"]
            line += " | " + " / ".join(f"{mem[m]:.0f}" for m in methods)
        print(line, flush=True)
    step = None
    if args.step_repeats > 0:
        step = _train_step_ratio(args.step_repeats, args.step_batch)
        print(
            f"optvq-mnist training step, batch {step['batch']}, 1 thread: VQ {step['ms']['vq']:.1f} ms, "
            f"Sinkhorn {step['ms']['sinkhorn']:.1f} ms, ratio {step['step_ratio']:.2f}x",
            flush=True,
        )
    result = {
        "command": command_line(),
        "commit": _commit(),
        "reference_commit": ref_commit,
        "machine": {"cpu": _cpu_model(), "platform": platform.platform(), "threads": torch.get_num_threads()},
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "torch": torch.__version__,
        "native_passes": library() is not None,
        "repeats": args.repeats,
        "timing": "median and min of --repeats runs after 2 warm-up runs, methods interleaved run by run",
        "memory": "peak RSS during one call (VmHWM, reset via /proc/self/clear_refs) minus RSS just before it, "
        "inputs made and a small warm-up call done; one fresh subprocess per method and size",
        "results": rows,
        "train_step": step,
    }
    write_results(result, args.output)


if __name__ == "__main__":
    main(parse_args())
