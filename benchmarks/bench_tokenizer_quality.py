"""Reconstruction quality of the same tokenizer with different quantizers, trained side by side in one run.

    python benchmarks/bench_tokenizer_quality.py                 # 500 steps each, the full MNIST test set
    python benchmarks/bench_tokenizer_quality.py --quick         # 100 steps, 2,000 test digits (a smoke run)
    python benchmarks/bench_tokenizer_quality.py --seeds 0 1 2 --only mmquant_optvq_4heads vqp_ema_kmeans_dead \
        --output benchmarks/results/bench_tokenizer_quality_seeds.json     # the leading rows over three seeds

The appendix-B MNIST autoencoder of OptVQ (the ``optvq-mnist`` size: 32x32, 8-dim latents, 1024 codes) is trained
from the same seed, on the same batches, for the same steps, once per quantizer: mmquant's nearest-neighbour VQ
(the paper's VQ-VAE baseline, and with EMA, k-means initialisation and dead-code restart), mmquant's OptVQ with one
and four heads (each also with the rotation trick), and vector-quantize-pytorch's ``VectorQuantize`` (EMA defaults;
EMA + k-means init + dead-code restart, without and with the rotation trick, and with 4 heads) and its ``FSQ``
(levels 8,5,5,5: 1000 codes). For
each: test PSNR (images in [0, 1]), SSIM, whole-test-set code usage and perplexity, and seconds per training step
(median). Results go to ``benchmarks/results/bench_tokenizer_quality.json`` with the command, commit and machine;
``python benchmarks/render_results.py`` renders them into ``benchmarks/RESULTS.md`` and PNG plots.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from bench_output import add_output_arguments, resolve_output  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser
from mmquant.data.mnist import mnist_images
from mmquant.metrics.functional import ssim
from mmquant.metrics.reconstruction import evaluate_reconstruction
from mmquant.models.optvq import OptVQModel
from mmquant.models.optvq.configuration_optvq import DEFAULT_QUANTIZER_CONFIG
from mmquant.models.registry import get_config
from mmquant.training import batch_indices, command_line, git_commit, make_scheduler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_quantizers import PEERS, build_peer  # noqa: E402

_VQ = {"type": "vq", "codebook_size": 1024, "beta": 0.25, "use_affine": True}
OURS = {
    "mmquant_vq": _VQ,  # the paper's VQ-VAE baseline (configs/mnsit/vqbase.yaml)
    "mmquant_vq_ema_kmeans_dead": {
        "type": "vq",
        "codebook_size": 1024,
        "beta": 0.25,
        "ema_decay": 0.99,
        "kmeans_init": True,
        "dead_code_threshold": 0.5,
    },
    "mmquant_optvq_1head": {**DEFAULT_QUANTIZER_CONFIG, "num_heads": 1},
    "mmquant_optvq_4heads": DEFAULT_QUANTIZER_CONFIG,
    "mmquant_optvq_1head_rotation": {**DEFAULT_QUANTIZER_CONFIG, "num_heads": 1, "rotation_trick": True},
    "mmquant_optvq_4heads_rotation": {**DEFAULT_QUANTIZER_CONFIG, "rotation_trick": True},
    # OptVQ's Sinkhorn assignment with the codebook care the strongest nearest-neighbour setting gets: dead-code
    # restart alone, and with EMA updates and k-means initialisation (EMA sets the codes directly: no affine map)
    "mmquant_optvq_4heads_dead": {**DEFAULT_QUANTIZER_CONFIG, "dead_code_threshold": 0.5},
    "mmquant_optvq_4heads_ema_kmeans_dead": {
        **DEFAULT_QUANTIZER_CONFIG,
        "use_affine": False,
        "ema_decay": 0.99,
        "kmeans_init": True,
        "dead_code_threshold": 0.5,
    },
}


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--steps", type=int, default=500, help="training steps per quantizer")
    p.add_argument("--batch_size", type=int, default=128, help="training batch size")
    p.add_argument("--learning_rate", type=float, default=2e-3, help="as examples/optvq/configs/mnist_optvq.yaml")
    p.add_argument("--lr_schedule", default="onecycle", help="learning-rate schedule")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed; rows give mean and std")
    p.add_argument("--test_images", type=int, default=10000, help="MNIST test images scored")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--only", nargs="+", default=None, help="run only these quantizers")
    p.add_argument("--quick", action="store_true", help="100 steps and 2,000 test digits")
    add_output_arguments(p, "bench_tokenizer_quality")
    p.add_argument(
        "--append",
        action="store_true",
        help="add these rows to --output (same settings required), each with its own command, commit and load",
    )
    args = resolve_output(p.parse_args(argv), "bench_tokenizer_quality")
    if args.quick:
        args.steps, args.test_images = 100, 2000
    return args


def build(name: str) -> OptVQModel:
    config = get_config("optvq-mnist")
    if name in OURS:
        config.quantizer_config = dict(OURS[name])
        return OptVQModel(config)
    model = OptVQModel(config)
    model.quantizer, codebook_size = build_peer(name, config.embed_dim)
    model.config.quantizer_config = {"type": name, "codebook_size": codebook_size}
    return model


@torch.no_grad()
def test_ssim(model, images, batch_size=500) -> float:
    model.eval()
    scores = [
        ssim((model(x).reconstruction.clamp(-1, 1) + 1) / 2, (x + 1) / 2, data_range=1.0, reduction="none")
        for x in images.split(batch_size)
    ]
    model.train()
    return float(torch.cat(scores).mean())


def run_one(name: str, args, train_images, test_images, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.steps, args.learning_rate, 0.05)
    times = []
    model.train()
    for step in range(args.steps):
        x = train_images[batch_indices(step, len(train_images), args.batch_size, seed)]
        start = time.perf_counter()
        out = model(x)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        times.append(time.perf_counter() - start)
    metrics = evaluate_reconstruction(model, test_images)
    return {
        "quantizer": name,
        "psnr": round(metrics["psnr"], 3),
        "ssim": round(test_ssim(model, test_images), 4),
        "code_usage": round(metrics["usage"], 4),
        "perplexity": round(metrics["perplexity"], 1),
        "codebook_size": model.config.quantizer_config["codebook_size"],
        "seconds_per_step": round(statistics.median(times), 5),
    }


def main(args) -> dict:
    commit = git_commit(HERE)  # the code this run imports, before anything else can change the tree
    torch.set_num_threads(args.threads)
    names = args.only or [*OURS, *PEERS]
    train_images = mnist_images("train", 32)
    test_images = mnist_images("test", 32)[: args.test_images]
    previous = json.loads(Path(args.output).read_text()) if args.append and Path(args.output).exists() else None
    settings = {k: getattr(args, k) for k in ("steps", "batch_size", "learning_rate", "lr_schedule", "seeds")}
    if previous is not None:
        old = {k: previous["settings"].get(k) for k in settings}
        old["seeds"] = old["seeds"] or [previous["settings"].get("seed")]  # files written before --seeds
        if old != settings:
            raise ValueError(f"--append: {args.output} was measured with {old}, not {settings}; use another --output.")
    rows = []
    for name in names:
        runs = [run_one(name, args, train_images, test_images, seed) for seed in args.seeds]
        rows.append(_mean_row(runs))
        print(json.dumps(rows[-1]), flush=True)
    if previous is not None:
        load = [round(x, 2) for x in os.getloadavg()]
        added = {"command": command_line(), "commit": commit, "load_average": load}
        rows = [r for r in previous["rows"] if r["quantizer"] not in names] + [{**r, **added} for r in rows]
    fastest_nn = min(r["seconds_per_step"] for r in rows if "fsq" not in r["quantizer"])
    for row in rows:
        row["step_time_ratio_to_fastest_vq"] = round(row["seconds_per_step"] / fastest_nn, 3)
    import vector_quantize_pytorch

    result = previous or {
        "benchmark": "tokenizer_quality",
        "command": command_line(),
        "commit": commit,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": args.threads},
        "torch": torch.__version__,
        "vector_quantize_pytorch": getattr(vector_quantize_pytorch, "__version__", None) or _dist_version(),
        "settings": settings
        | {"test_images": len(test_images), "model": "optvq-mnist (appendix-B CNN, 8-dim latents)"},
    }
    result["rows"] = rows
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return result


_MEANS = {"psnr": 3, "ssim": 4, "code_usage": 4, "perplexity": 1, "seconds_per_step": 5}


def _mean_row(runs: list[dict]) -> dict:
    """One row per quantizer: each figure averaged over the seeds, plus the PSNR's std and per-seed PSNRs."""
    row = dict(runs[0])
    for key, digits in _MEANS.items():
        row[key] = round(statistics.fmean(r[key] for r in runs), digits)
    if len(runs) > 1:
        row["psnr_std"] = round(statistics.stdev(r["psnr"] for r in runs), 3)
        row["psnr_per_seed"] = [r["psnr"] for r in runs]
    return row


def _dist_version():
    from importlib.metadata import version

    return version("vector-quantize-pytorch")


if __name__ == "__main__":
    main(parse_args())
