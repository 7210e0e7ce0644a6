"""How far the Sinkhorn (OptVQ) assignment moves tokens from their nearest code as the codebook outgrows the batch.

    python benchmarks/bench_sinkhorn_tokens_per_code.py       # -> outputs/benchmarks/<name>.json
    python benchmarks/bench_sinkhorn_tokens_per_code.py \
        --results_file benchmarks/results/bench_sinkhorn_tokens_per_code.json

Sinkhorn's plan gives every code the same mass (eq. 8's uniform marginal). With fewer tokens than codes a hard
assignment cannot meet it, and the argmax sends more tokens to codes farther than their nearest. The tokenizer
benchmark at K = 16384 has N = 8192 tokens per head and batch (128 images x 8 x 8 latents), the one setting where
OptVQ stopped leading its peers. This script measures the effect alone, with no training: N tokens and K codes drawn
from the same distribution (a codebook fitted to its data; D = 2, as each head of ``optvq-mnist``), and for each
(N, K) the share of tokens not sent to their nearest code, the mean squared distance to the assigned code over that
to the nearest code (the quantization error that OptVQ adds), and the codes used by each assignment; means over
``--seeds``.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_output import add_output_arguments, resolve_output  # noqa: E402  (benchmarks/)
from mmquant.arguments import make_parser  # noqa: E402
from mmquant.quantizers.sinkhorn_kernel import sinkhorn_assign  # noqa: E402
from mmquant.training import command_line, git_commit, merge_result  # noqa: E402

NAME = "bench_sinkhorn_tokens_per_code"


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--tokens", type=int, nargs="+", default=[8192, 16384], help="tokens per batch and head (N)")
    p.add_argument("--codebook_sizes", type=int, nargs="+", default=[1024, 4096, 8192, 16384, 32768], help="codes (K)")
    p.add_argument("--dim", type=int, default=2, help="feature dimension per head (D)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one draw of tokens and codes per seed")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    add_output_arguments(p, NAME)
    return resolve_output(p.parse_args(argv), NAME)


def measure(n: int, k: int, d: int, seed: int) -> dict:
    """One draw: tokens and codes from N(0, I_d); the Sinkhorn (reference settings) and nearest-code assignments."""
    g = torch.Generator().manual_seed(seed)
    x, codebook = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    dist2 = torch.cdist(x, codebook).square()  # (N, K)
    nearest, sinkhorn = dist2.argmin(1), sinkhorn_assign(x, codebook)
    err_nearest = dist2.gather(1, nearest[:, None]).mean().item()
    err_sinkhorn = dist2.gather(1, sinkhorn[:, None]).mean().item()
    return {
        "moved_share": (sinkhorn != nearest).float().mean().item(),
        "error_ratio": err_sinkhorn / err_nearest,
        "codes_used_sinkhorn": sinkhorn.unique().numel(),
        "codes_used_nearest": nearest.unique().numel(),
    }


def main(args) -> dict:
    torch.set_num_threads(args.threads)
    commit = git_commit(Path(__file__).resolve().parent)
    rows = []
    for n in args.tokens:
        for k in args.codebook_sizes:
            runs = [measure(n, k, args.dim, seed) for seed in args.seeds]
            row = {"tokens": n, "codebook_size": k, "codes_per_token": round(k / n, 3)}
            for key in runs[0]:
                row[key] = round(statistics.fmean(r[key] for r in runs), 4)
            print(row, flush=True)
            rows.append(row)
    result = {
        "command": command_line(),
        "commit": commit,
        "settings": {"dim": args.dim, "seeds": args.seeds, "data": "tokens and codes from N(0, I)", "epsilon": 10.0},
        "rows": rows,
    }
    out = Path(args.output)
    merge_result(out, "sinkhorn_tokens_per_code", result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(parse_args())
