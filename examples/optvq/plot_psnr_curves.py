"""PSNR against steps for training runs, as a PNG, with the curves recorded in the results file.

    python examples/optvq/plot_psnr_curves.py --run optvq=outputs/optvq-mnist --run vq=outputs/vq-mnist \\
        --results_file examples/optvq/results/mnist.json --output examples/optvq/results/mnist_psnr.png

Reads each run's ``losses.jsonl`` (the ``eval_psnr`` records: PSNR on the first ``--eval_samples`` test digits
during training) and stores them as ``psnr_curve`` ([step, dB] pairs) in the run's entry of the results file.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmquant.arguments import make_parser


def parse_args(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--run", action="append", required=True, help="name=output_dir (repeatable)")
    p.add_argument(
        "--results_file",
        required=True,
        help="the results file whose runs' output folders are read (and into which the curves are merged)",
    )
    p.add_argument("--output", required=True, help="the PNG written")
    return p.parse_args(argv)


def main(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results_path = Path(args.results_file)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    fig, ax = plt.subplots(figsize=(6, 4))
    for spec in args.run:
        name, _, directory = spec.partition("=")
        records = map(json.loads, (Path(directory) / "losses.jsonl").read_text().splitlines())
        curve = [[r["step"], round(r["eval_psnr"], 3)] for r in records if "eval_psnr" in r]
        if not curve:
            raise ValueError(f"--run {spec}: no eval_psnr records in {directory}/losses.jsonl")
        ax.plot(*zip(*curve), marker="o", label=name)
        if name in results:
            results[name]["psnr_curve"] = curve
    ax.set_xlabel("step")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("MNIST reconstruction during training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output} and the curves into {results_path}")


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="plot_psnr_curves.py"))
