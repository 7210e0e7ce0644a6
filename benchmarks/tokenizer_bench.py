"""What the tokenizer-quality benchmarks share: their command-line options, the training of one tokenizer per
quantizer (same seed, batches and steps for every quantizer, optionally with code usage recorded over training),
the seed-averaged rows, and the results file with its provenance (``--append`` included).

Used by ``bench_tokenizer_quality.py`` (one quantizer per row) and ``bench_residual_quality.py`` (residual stacks).
"""

from __future__ import annotations

import copy
import functools
import json
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from bench_output import add_output_arguments, resolve_output  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser
from mmquant.data.mnist import mnist_images
from mmquant.metrics.functional import ssim
from mmquant.training import batch_indices, command_line, git_commit, make_scheduler

HERE = Path(__file__).resolve().parent
MODEL = "optvq-mnist (appendix-B CNN, 8-dim latents)"

__all__ = [
    "MAX_PROBE_IMAGES",
    "MODEL",
    "SETTINGS_DEFAULTS",
    "finish_rows",
    "make_benchmark_parser",
    "mean_row",
    "one_run",
    "parse_benchmark_args",
    "previous_results",
    "quantizer_options",
    "run_benchmark",
    "settings_of",
    "test_ssim",
    "train",
    "write_results",
]

MAX_PROBE_IMAGES = 1000  # test images scored at each --usage_every checkpoint (the first ones of the test set)


def make_benchmark_parser(doc: str, name: str):
    """The options every tokenizer-quality benchmark takes; the caller adds its own and calls
    :func:`parse_benchmark_args`."""
    p = make_parser(doc)
    p.add_argument("--steps", type=int, default=500, help="training steps per quantizer")
    p.add_argument("--batch_size", type=int, default=128, help="training batch size")
    p.add_argument("--learning_rate", type=float, default=2e-3, help="as examples/optvq/configs/mnist_optvq.yaml")
    p.add_argument("--lr_schedule", default="onecycle", help="learning-rate schedule")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed; rows give mean and std")
    p.add_argument("--codebook_size", type=int, default=1024, help="codes per codebook (per stage when residual)")
    p.add_argument(
        "--usage_every",
        type=int,
        default=0,
        help=f"every N steps, record the training batch's code usage and the eval-mode usage, perplexity and PSNR "
        f"on the first {MAX_PROBE_IMAGES} test images (0: off); recorded per seed as usage_curve_per_seed",
    )
    p.add_argument(
        "--optvq_epsilon",
        type=float,
        default=None,
        help="the Sinkhorn epsilon of every mmquant OptVQ (sinkhorn) quantizer or stage (default: its own, 10.0)",
    )
    p.add_argument(
        "--optvq_n_iters",
        type=int,
        default=None,
        help="the Sinkhorn iterations of every mmquant OptVQ quantizer or stage (default: its own, 5)",
    )
    p.add_argument("--test_images", type=int, default=10000, help="MNIST test images scored")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (per job)")
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device to train and score on (cpu, cuda, cuda:1); on a GPU each step is timed to its end "
        "(synchronised)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many (quantizer, seed) runs at once in worker processes (they share --device; step times "
        "are then measured under that sharing, and the file records --jobs)",
    )
    p.add_argument("--only", nargs="+", default=None, help="run only these quantizers")
    p.add_argument("--quick", action="store_true", help="100 steps and 2,000 test digits")
    add_output_arguments(p, name)
    p.add_argument(
        "--append",
        action="store_true",
        help="add these rows to --output (same settings required), each with its own command, commit and load",
    )
    return p


def parse_benchmark_args(p, argv, name: str):
    args = resolve_output(p.parse_args(argv), name)
    if args.quick:
        args.steps, args.test_images = 100, 2000
    limits = {"steps": 1, "batch_size": 1, "codebook_size": 2, "test_images": 1, "usage_every": 0, "jobs": 1}
    for key, low in limits.items():
        if getattr(args, key) < low:
            p.error(f"--{key} {getattr(args, key)}: expected an integer >= {low}.")
    if args.optvq_epsilon is not None and not args.optvq_epsilon > 0:
        p.error(f"--optvq_epsilon {args.optvq_epsilon}: expected a positive number.")
    if args.optvq_n_iters is not None and args.optvq_n_iters < 1:
        p.error(f"--optvq_n_iters {args.optvq_n_iters}: expected an integer >= 1.")
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        p.error(f"--device {args.device!r}: {err}")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA device is available here; use --device cpu.")
    if args.usage_every > args.steps:
        p.error(f"--usage_every {args.usage_every}: more than --steps {args.steps}; no checkpoint would be recorded.")
    return args


def quantizer_options(config: dict, args) -> dict:
    """``config`` (an mmquant ``quantizer_config``) at ``--codebook_size``, with ``--optvq_epsilon`` and
    ``--optvq_n_iters`` applied when it is an OptVQ quantizer or a residual stack of OptVQ stages."""
    config = {**config, "codebook_size": args.codebook_size}
    if "sinkhorn" in (config["type"], config.get("stage_type")):
        for key, value in (("epsilon", args.optvq_epsilon), ("n_iters", args.optvq_n_iters)):
            if value is not None:
                config[key] = value
    return config


def settings_of(args) -> dict:
    """The options a results file's rows depend on: ``--append`` adds rows only to a file measured with these."""
    keys = ("steps", "batch_size", "learning_rate", "lr_schedule", "seeds", "codebook_size")
    return {k: getattr(args, k) for k in (*keys, "optvq_epsilon", "optvq_n_iters")} | {
        "device": torch.device(args.device).type
    }


# what files written before an option existed were measured with
SETTINGS_DEFAULTS = {"codebook_size": 1024, "optvq_epsilon": None, "optvq_n_iters": None, "device": "cpu"}


@torch.no_grad()
def test_ssim(model, images, batch_size=500) -> float:
    """Mean SSIM of the eval-mode reconstructions of ``images`` (in [-1, 1]), scored in [0, 1]."""
    model.eval()
    scores = [
        ssim((model(x).reconstruction.clamp(-1, 1) + 1) / 2, (x + 1) / 2, data_range=1.0, reduction="none")
        for x in images.split(batch_size)
    ]
    model.train()
    return float(torch.cat(scores).mean())


def train(model, args, train_images, seed: int, probe: Callable | None = None) -> tuple[list, list, list[dict]]:
    """Train ``model`` for ``args.steps`` on the seed's batches; returns the wall-clock seconds of each step, the CPU
    seconds of this thread in each (with ``--threads 1`` all of the step's work, and unlike wall-clock time
    unaffected by other processes on a busy machine) and, every ``args.usage_every`` steps, the training batch's
    usage with ``probe(model)``'s figures. The probe runs outside the timed step and under a forked RNG, so
    recording the curve leaves the training unchanged."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.steps, args.learning_rate, 0.05)
    times, cpu_times, curve = [], [], []
    model.train()
    for step in range(args.steps):
        x = train_images[batch_indices(step, len(train_images), args.batch_size, seed)]
        start, cpu_start = time.perf_counter(), time.thread_time()
        out = model(x)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        if x.is_cuda:
            torch.cuda.synchronize(x.device)  # the step's kernels have finished, not only been queued
        times.append(time.perf_counter() - start)
        cpu_times.append(time.thread_time() - cpu_start)
        if probe is not None and args.usage_every and (step + 1) % args.usage_every == 0:
            with torch.random.fork_rng(devices=[]):
                point = probe(model)
            model.train()
            curve.append({"step": step + 1, "batch_usage": round(float(out.usage), 4), **point})
    return times, cpu_times, curve


_MEANS = {"psnr": 3, "ssim": 4, "code_usage": 4, "perplexity": 1, "seconds_per_step": 5, "cpu_seconds_per_step": 5}


def mean_row(runs: list[dict], list_means: dict[str, int] | None = None) -> dict:
    """One row per quantizer: each figure averaged over the seeds (lists in ``list_means`` element by element),
    plus the PSNR's std, the per-seed PSNRs and usages, and each seed's usage curve when recorded."""
    row = {k: v for k, v in runs[0].items() if k != "usage_curve"}
    for key, digits in _MEANS.items():
        row[key] = round(statistics.fmean(r[key] for r in runs), digits)
    for key, digits in (list_means or {}).items():
        row[key] = [round(statistics.fmean(v), digits) for v in zip(*(r[key] for r in runs))]
    if len(runs) > 1:
        row["psnr_std"] = round(statistics.stdev(r["psnr"] for r in runs), 3)
        row["psnr_per_seed"] = [r["psnr"] for r in runs]
        row["code_usage_per_seed"] = [r["code_usage"] for r in runs]
    if runs[0].get("usage_curve"):
        row["usage_curve_per_seed"] = [r["usage_curve"] for r in runs]
    return row


def previous_results(args, settings: dict) -> dict | None:
    """With ``--append``, the existing results file, after checking it was measured with ``settings`` (keys a file
    written before an option existed take their value from :data:`SETTINGS_DEFAULTS`); otherwise None."""
    if not (args.append and Path(args.output).exists()):
        return None
    previous = json.loads(Path(args.output).read_text())
    old = {k: previous["settings"].get(k, SETTINGS_DEFAULTS.get(k)) for k in settings}
    old["seeds"] = old["seeds"] or [previous["settings"].get("seed")]  # files written before --seeds
    if old != settings:
        raise ValueError(f"--append: {args.output} was measured with {old}, not {settings}; use another --output.")
    return previous


def finish_rows(rows: list[dict], names: list[str], previous: dict | None, commit: str) -> list[dict]:
    """Merge new rows into ``previous``'s (new rows carry their own command, commit and load average) and add each
    row's step time over the fastest nearest-neighbour row's (FSQ and LFQ do no nearest-neighbour search)."""
    if previous is not None:
        load = [round(x, 2) for x in os.getloadavg()]
        added = {"command": command_line(), "commit": commit, "load_average": load}
        rows = [r for r in previous["rows"] if r["quantizer"] not in names] + [{**r, **added} for r in rows]
    nn_rows = [r for r in rows if not any(s in r["quantizer"] for s in ("fsq", "lfq"))] or rows
    fastest_nn = min(r["seconds_per_step"] for r in nn_rows)
    for row in rows:
        row["step_time_ratio_to_fastest_vq"] = round(row["seconds_per_step"] / fastest_nn, 3)
    return rows


def write_results(args, benchmark: str, rows: list[dict], previous: dict | None, commit: str, settings: dict) -> dict:
    """Write ``rows`` to ``args.output`` with the command, commit, machine and versions (kept from ``previous``)."""
    import vector_quantize_pytorch

    result = previous or {
        "benchmark": benchmark,
        "command": command_line(),
        "commit": commit,
        "machine": _machine(args),
        "torch": torch.__version__,
        "vector_quantize_pytorch": getattr(vector_quantize_pytorch, "__version__", None) or _dist_version(),
        "settings": settings,
    }
    result["rows"] = rows
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # a run stopped while writing leaves the last whole file
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, out)
    return result


def run_benchmark(
    args, benchmark: str, known: list[str], build: Callable, score: Callable, settings: dict, list_means=None
) -> dict:
    """Train and score every quantizer of ``--only`` (default: ``known``) for every seed and write the results file.

    ``build(name, args)`` makes the tokenizer; ``score(model, images)`` gives the row's figures (``psnr``,
    ``code_usage``, ``perplexity``, ...) on the test images, and on the probe images at each ``--usage_every``
    checkpoint (there each figure gets a ``probe_`` prefix); ``settings`` are what ``--append`` must match;
    ``list_means`` are list-valued figures averaged over the seeds element by element. With ``--jobs N`` the runs
    go to N worker processes (``build`` and ``score`` must then be module-level functions)."""
    commit = git_commit(HERE)  # the code this run imports, before anything else can change the tree
    names = args.only or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--only {unknown}: unknown quantizers; expected names from {known}.")
    previous = previous_results(args, settings)  # refuses other settings before any training
    test_images = len(mnist_images("test", 32)[: args.test_images])  # as many as the runs score
    extra = {"test_images": test_images, "model": MODEL, "usage_every": args.usage_every}
    extra |= {"usage_probe_images": min(MAX_PROBE_IMAGES, test_images), "jobs": args.jobs}

    def save(rows: list[dict]) -> dict:
        """The results file with the rows finished so far (a stopped run keeps them; the file says so)."""
        kept = copy.deepcopy(previous)  # finish_rows and write_results fill it in: each save starts from the original
        done = finish_rows([dict(r) for r in rows], names[: len(rows)], kept, commit)
        stopped = {} if len(rows) == len(names) else {"stopped_after": f"{len(rows)} of {len(names)} quantizers"}
        return write_results(args, benchmark, done, kept, commit, settings | extra | stopped)

    plan = [(name, seed) for name in names for seed in args.seeds]
    if args.jobs == 1:
        runs = (one_run(name, seed, args, build, score) for name, seed in plan)
        return _rows_as_they_finish(runs, len(args.seeds), list_means, save)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked process
    with ProcessPoolExecutor(min(args.jobs, len(plan)), mp_context=context) as pool:
        n = len(plan)
        runs = pool.map(one_run, *zip(*plan), [args] * n, [build] * n, [score] * n)
        return _rows_as_they_finish(runs, len(args.seeds), list_means, save)


def _rows_as_they_finish(runs, seeds: int, list_means, save: Callable) -> dict:
    """Group the runs (in plan order: each quantizer's seeds in a row) into one row per quantizer, printing each
    and saving the results file after each; returns the last file written."""
    rows, group, result = [], [], {}
    for run in runs:
        group.append(run)
        if len(group) == seeds:
            rows.append(mean_row(group, list_means))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "usage_curve_per_seed"}), flush=True)
            result, group = save(rows), []
    return result


@functools.cache
def _images(test_images: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST train and (the first ``test_images``) test digits at 32x32 on ``device``, loaded once per process."""
    train_images = mnist_images("train", 32).to(device)
    return train_images, mnist_images("test", 32)[:test_images].to(device)


def one_run(name: str, seed: int, args, build: Callable, score: Callable) -> dict:
    """Train the quantizer ``name`` from ``seed`` on ``args.device`` and score it: one seed's figures of its row."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train_images, test_images = _images(args.test_images, str(device))
    probe_images = test_images[:MAX_PROBE_IMAGES]

    def probe(model) -> dict:
        return {f"probe_{k}": v for k, v in score(model, probe_images).items()}

    torch.manual_seed(seed)
    model = build(name, args).to(device)  # initialised on the CPU: the same weights on every device
    times, cpu_times, curve = train(model, args, train_images, seed, probe=probe)
    return (
        {"quantizer": name, **score(model, test_images), "ssim": round(test_ssim(model, test_images), 4)}
        | {"codebook_size": model.config.quantizer_config["codebook_size"]}
        | {"seconds_per_step": round(statistics.median(times), 5)}
        | {"cpu_seconds_per_step": round(statistics.median(cpu_times), 5)}
        | ({"usage_curve": curve} if curve else {})
    )


def _machine(args) -> dict:
    machine = {"platform": platform.platform(), "processor": platform.processor(), "threads": args.threads}
    device = torch.device(args.device)
    if device.type == "cuda":
        machine["device"] = torch.cuda.get_device_name(device)
    return machine


def _dist_version():
    from importlib.metadata import version

    return version("vector-quantize-pytorch")
