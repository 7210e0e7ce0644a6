"""Reconstruction quality of the same tokenizer with different quantizers, trained side by side in one run.

    python benchmarks/bench_tokenizer_quality.py                 # 500 steps each, the full MNIST test set
    python benchmarks/bench_tokenizer_quality.py --quick         # 100 steps, 2,000 test digits (a smoke run)
    python benchmarks/bench_tokenizer_quality.py --seeds 0 1 2 --only mmquant_optvq_4heads vqp_ema_kmeans_dead \
        --output benchmarks/results/bench_tokenizer_quality_seeds.json     # the leading rows over three seeds
    python benchmarks/bench_tokenizer_quality.py --codebook_size 8192 --seeds 0 1 2 \
        --output benchmarks/results/bench_tokenizer_quality_k8192.json    # a large codebook, every quantizer

The appendix-B MNIST autoencoder of OptVQ (the ``optvq-mnist`` size: 32x32, 8-dim latents, ``--codebook_size``
codes, 1024 by default) is trained from the same seed, on the same batches, for the same steps, once per quantizer:
mmquant's nearest-neighbour VQ (the paper's VQ-VAE baseline, and with EMA, k-means initialisation and dead-code
restart), mmquant's OptVQ with one and four heads (each also with the rotation trick, and with codebook care), and
vector-quantize-pytorch's ``VectorQuantize`` (EMA defaults; EMA + k-means init + dead-code restart, without and
with the rotation trick, and with 4 heads), its ``FSQ`` (the FSQ paper's level set nearest the codebook size:
8,5,5,5 = 1,000 codes for 1024; see ``peer_quantizers.FSQ_LEVELS``) and its ``LFQ`` (the nearest power of two).
Each row records the codebook size actually used. For each: test PSNR (images in [0, 1]), SSIM, whole-test-set code
usage and perplexity, and seconds per training step (median); with ``--usage_every N``, code usage over training.
Results go to ``<--output_dir>/bench_tokenizer_quality.json`` (or ``--output``) with the command, commit and
machine; ``python benchmarks/render_results.py`` renders ``benchmarks/results/`` into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmquant.metrics.reconstruction import evaluate_reconstruction
from mmquant.models.optvq import OptVQModel
from mmquant.models.optvq.configuration_optvq import DEFAULT_QUANTIZER_CONFIG
from mmquant.models.registry import get_config

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_quantizers import PEERS, build_peer  # noqa: E402
from tokenizer_bench import (  # noqa: E402
    make_benchmark_parser,
    parse_benchmark_args,
    quantizer_options,
    run_benchmark,
    settings_of,
)

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
    p = make_benchmark_parser(__doc__, "bench_tokenizer_quality")
    return parse_benchmark_args(p, argv, "bench_tokenizer_quality")


def build(name: str, args) -> OptVQModel:
    """The optvq-mnist tokenizer with quantizer ``name`` at ``args.codebook_size`` codes."""
    config = get_config("optvq-mnist")
    if name in OURS:
        config.quantizer_config = quantizer_options(OURS[name], args)
        return OptVQModel(config)
    model = OptVQModel(config)
    model.quantizer, codebook_size = build_peer(name, config.embed_dim, args.codebook_size)
    model.config.quantizer_config = {"type": name, "codebook_size": codebook_size}
    return model


def score(model, images) -> dict:
    """Test PSNR and whole-set code usage and perplexity."""
    m = evaluate_reconstruction(model, images)
    return {"psnr": round(m["psnr"], 3), "code_usage": round(m["usage"], 4), "perplexity": round(m["perplexity"], 1)}


def main(args) -> dict:
    known = [*OURS, *PEERS]
    return run_benchmark(args, "tokenizer_quality", known, build, score, settings_of(args))


if __name__ == "__main__":
    main(parse_args())
