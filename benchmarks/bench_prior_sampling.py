"""MXQ-VAE prior sampling with and without the key/value cache, measured side by side in one run.

    python benchmarks/bench_prior_sampling.py                      # 128x128 images: 256 + 8 = 264 tokens

Builds an untrained ``MXQVAEPriorForCausalLM`` over a stage-1 config whose joint sequence has ``--image_size``
squared / 64 image tokens plus 8 text tokens, and samples ``--batch`` sequences of that length with
``use_cache=True`` and ``use_cache=False`` (the two interleaved run by run, after a warm-up of each), checking that
both give the same tokens for the same seed. Reports tokens per second (median over ``--repeats``) and the ratio,
and writes ``benchmarks/results/bench_prior_sampling.json`` with the command, commit, torch version, threads,
machine and load average. Target (issue 5): at least 5x more tokens/s with the cache at 256+ tokens.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch

from bench_output import add_output_arguments, resolve_output, write_results  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser
from mmquant.models.mxqvae import MXQVAEConfig, MXQVAEPriorConfig, MXQVAEPriorForCausalLM
from mmquant.training import command_line, git_commit

HERE = Path(__file__).resolve().parent


def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--image_size", type=int, default=128, help="stage-1 image size (tokens = (size/8)^2 + 8)")
    p.add_argument("--n_layer", type=int, default=4, help="prior transformer layers")
    p.add_argument("--n_embd", type=int, default=128, help="prior width")
    p.add_argument("--batch", type=int, default=4, help="sequences sampled at once")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (the median is reported)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    add_output_arguments(p, "bench_prior_sampling")
    args = resolve_output(p.parse_args(argv), "bench_prior_sampling")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    stage1 = MXQVAEConfig(image_size=args.image_size, quantizer_config={"type": "vq", "codebook_size": 256})
    config = MXQVAEPriorConfig(stage1_config=stage1, n_layer=args.n_layer, n_head=4, n_embd=args.n_embd)
    prior = MXQVAEPriorForCausalLM(config).eval()
    tokens = stage1.num_tokens * args.batch
    times = {True: [], False: []}
    outputs = {}
    load_start = list(os.getloadavg())
    for use_cache in (True, False):  # warm-up
        prior.sample_codes(args.batch, generator_seed=0, use_cache=use_cache)
    for _ in range(args.repeats):
        for use_cache in (True, False):
            start = time.perf_counter()
            outputs[use_cache] = prior.sample_codes(args.batch, generator_seed=1, use_cache=use_cache)
            times[use_cache].append(time.perf_counter() - start)
    same = bool(torch.equal(outputs[True], outputs[False]))
    rate = {k: tokens / statistics.median(v) for k, v in times.items()}
    result = {
        "command": command_line(),
        "commit": git_commit(HERE),
        "torch": torch.__version__,
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "sequence_tokens": stage1.num_tokens,
        "batch": args.batch,
        "prior": {
            "n_layer": args.n_layer,
            "n_embd": args.n_embd,
            "parameters": sum(p.numel() for p in prior.parameters()),
        },
        "tokens_per_second_cached": round(rate[True], 1),
        "tokens_per_second_uncached": round(rate[False], 1),
        "speedup": round(rate[True] / rate[False], 2),
        "identical_tokens": same,
        "seconds": {"cached": times[True], "uncached": times[False]},
    }
    print(
        f"{stage1.num_tokens} tokens x {args.batch}: cached {rate[True]:.0f} tok/s, uncached {rate[False]:.0f} "
        f"tok/s, speedup {rate[True] / rate[False]:.1f}x, identical tokens: {same}"
    )
    write_results(result, args.output)
    return result


if __name__ == "__main__":
    main()
