"""Reconstruction quality of the same tokenizer with residual (multi-stage) quantizers, trained side by side.

    python benchmarks/bench_residual_quality.py --quick                       # a smoke run: 4 stages, 100 steps
    python benchmarks/bench_residual_quality.py --num_stages 8 --seeds 0 1 2 \
        --output benchmarks/results/bench_residual_quality_8stages.json       # 8 stages, three seeds

The tokenizer of ``bench_tokenizer_quality.py`` (OptVQ's appendix-B MNIST autoencoder, 8-dim latents), trained the
same way (same seeds, batches, steps and options), with its quantizer replaced by a stack of ``--num_stages``
residual stages of ``--codebook_size`` codes each (RQ-VAE, arXiv:2203.01941): mmquant's
:class:`~mmquant.quantizers.ResidualQuantizer` with OptVQ Sinkhorn stages (one head, and four heads) and with
nearest-neighbour stages (the paper's VQ-VAE settings, and with EMA, k-means initialisation and dead-code restart),
and vector-quantize-pytorch's ``ResidualVQ`` with its strongest settings (EMA, k-means init, dead-code restart). Each
row gives test PSNR, SSIM, every stage's whole-test-set code usage and perplexity (``stage_usage``,
``stage_perplexity``; ``code_usage`` is their mean) and seconds per training step; with ``--usage_every N``, the
per-stage usage over training. This is the measurement behind the claim in ``residual.py``'s docstring that Sinkhorn
stages keep using their whole codebook at depth.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

from mmquant.metrics.reconstruction import evaluate_reconstruction
from mmquant.models.optvq import OptVQModel
from mmquant.models.optvq.configuration_optvq import DEFAULT_QUANTIZER_CONFIG
from mmquant.models.registry import get_config
from mmquant.quantizers import CodebookUsage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_quantizers import RESIDUAL_PEERS, build_residual_peer  # noqa: E402
from tokenizer_bench import (  # noqa: E402
    make_benchmark_parser,
    parse_benchmark_args,
    quantizer_options,
    run_benchmark,
    settings_of,
)

_SINKHORN_STAGE = {k: v for k, v in DEFAULT_QUANTIZER_CONFIG.items() if k != "type"}  # OptVQ's reference settings
OURS = {
    "mmquant_rq_sinkhorn": {"type": "residual", "stage_type": "sinkhorn", **_SINKHORN_STAGE, "num_heads": 1},
    "mmquant_rq_sinkhorn_4heads": {"type": "residual", "stage_type": "sinkhorn", **_SINKHORN_STAGE},
    "mmquant_rq_vq": {"type": "residual", "stage_type": "vq", "beta": 0.25, "use_affine": True},
    "mmquant_rq_vq_ema_kmeans_dead": {
        "type": "residual",
        "stage_type": "vq",
        "beta": 0.25,
        "ema_decay": 0.99,
        "kmeans_init": True,
        "dead_code_threshold": 0.5,
    },
}


def parse_args(argv=None):
    p = make_benchmark_parser(__doc__, "bench_residual_quality")
    p.add_argument("--num_stages", type=int, default=4, help="residual stages of every quantizer")
    args = parse_benchmark_args(p, argv, "bench_residual_quality")
    if args.num_stages < 1:
        p.error(f"--num_stages {args.num_stages}: expected an integer >= 1.")
    return args


def build(name: str, args) -> OptVQModel:
    """The optvq-mnist tokenizer with the residual quantizer ``name``: ``args.num_stages`` stages of
    ``args.codebook_size`` codes."""
    config = get_config("optvq-mnist")
    if name in OURS:
        config.quantizer_config = quantizer_options(OURS[name], args) | {"num_stages": args.num_stages}
        return OptVQModel(config)
    model = OptVQModel(config)
    model.quantizer, size = build_residual_peer(name, config.embed_dim, args.codebook_size, args.num_stages)
    model.config.quantizer_config = {"type": name, "codebook_size": size, "num_stages": args.num_stages}
    return model


@torch.no_grad()
def stage_usage(model, images, batch_size: int = 500) -> list[dict]:
    """Each stage's code usage and perplexity over ``images`` (eval mode: every feature takes its nearest code)."""
    q = model.config.quantizer_config
    meters = [CodebookUsage(q["codebook_size"]) for _ in range(q["num_stages"])]
    was_training = model.training
    model.eval()
    for x in images.split(batch_size):
        indices = model.encode_to_indices(x)  # (B, h, w, stages) or (B, h, w, heads, stages)
        for stage, meter in enumerate(meters):
            meter.update(indices[..., stage])
    model.train(was_training)
    return [meter.compute() for meter in meters]


def score(model, images) -> dict:
    """Test PSNR, and each stage's whole-set code usage and perplexity (``code_usage``/``perplexity``: their means)."""
    stages = stage_usage(model, images)
    return {
        "num_stages": len(stages),
        "psnr": round(evaluate_reconstruction(model, images)["psnr"], 3),
        "code_usage": round(statistics.fmean(s["usage"] for s in stages), 4),
        "perplexity": round(statistics.fmean(s["perplexity"] for s in stages), 1),
        "stage_usage": [round(s["usage"], 4) for s in stages],
        "stage_perplexity": [round(s["perplexity"], 1) for s in stages],
    }


def main(args) -> dict:
    known = [*OURS, *RESIDUAL_PEERS]
    settings = settings_of(args) | {"num_stages": args.num_stages}
    means = {"stage_usage": 4, "stage_perplexity": 1}
    return run_benchmark(args, "residual_quality", known, build, score, settings, list_means=means)


if __name__ == "__main__":
    main(parse_args())
