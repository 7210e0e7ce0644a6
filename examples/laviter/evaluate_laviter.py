"""Evaluate trained LAViTeR models on Caption MNIST test pairs in one table, one row per seed and a mean ± std row per
model (the paper's Table 2 ablation, with seeds):

    python examples/laviter/evaluate_laviter.py \\
        --models full=outputs/laviter-s0/joint,outputs/laviter-s1/joint,outputs/laviter-s2/joint \\
                 vta-only=outputs/laviter-s0/vta_only,outputs/laviter-s1/vta_only,outputs/laviter-s2/vta_only \\
        --results_file examples/laviter/results/caption_mnist.json

For each model folder (the seed read from its ``args.json``), on the first ``--eval_images`` ``--dataset_config`` test
pairs: real-image R-precision top-1/top-3 and AIMCoS (the alignment itself, the ablation's figures), and, for the
modules the model has, the DAMSM-scored R-precision of its generated images (trained for in the joint phase), the
judge's reading of them (object and pair accuracy, judge-scored R-precision; the judge never takes part in training)
and the captioner's teacher-forcing, object and pair accuracy. ``<output_dir>/evaluation.json`` and ``evaluation.md``
always; with ``--results_file`` the entries ``ablation/<model>/seed<k>`` and ``ablation/<model>`` (mean, and
``<metric>_std``, the sample standard deviation over seeds) are merged into it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.training import command_line, git_commit, merge_result, seed_summary

try:
    import train_laviter
except ImportError:  # pragma: no cover
    from . import train_laviter

HERE = Path(__file__).resolve().parent
# the columns of the table, in order (a model without a generator or captioner leaves theirs empty)
COLUMNS = (
    "real_r_precision@1",
    "real_r_precision@3",
    "aimcos",
    "r_precision@1",
    "judge_r_precision@1",
    "judge_object_accuracy",
    "judge_pair_accuracy",
    "caption_object_accuracy",
    "caption_pair_accuracy",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--models", nargs="+", required=True, help="name=folder or name=folder,folder,... (one per seed)")
    p.add_argument("--dataset_config", default="quad2", help="Caption MNIST configuration (default: quad2)")
    p.add_argument("--train_examples", type=int, default=20000, help="training pairs generated with the test split")
    p.add_argument("--test_examples", type=int, default=1000, help="test pairs generated")
    p.add_argument("--eval_images", type=int, default=1000, help="test pairs scored")
    p.add_argument("--r_precision_candidates", type=int, default=100, help="captions ranked per image (AttnGAN)")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache of the prepared Caption MNIST data")
    p.add_argument("--output_dir", default="outputs/laviter-evaluation", help="where evaluation.json/.md go")
    p.add_argument("--results_file", default=None, help="merge the ablation entries into this results file")
    p.add_argument("--num_threads", type=int, default=None, help="torch intra-op threads")
    args = p.parse_args(argv)
    for spec in args.models:
        name, sep, folders = spec.partition("=")
        if not sep or not name or not folders:
            p.error(f"--models {spec!r}: expected name=folder or name=folder,folder,...")
        missing = [f for f in folders.split(",") if not (Path(f) / "config.json").is_file()]
        if missing:
            p.error(f"--models {name}: no trained model in {missing} (a train_laviter.py --output_dir).")
    return args


def _seed(folder: str, position: int) -> int:
    run_args = Path(folder) / "args.json"
    return int(json.loads(run_args.read_text()).get("seed", position)) if run_args.is_file() else position


def evaluate_folder(folder: str, args) -> dict[str, float]:
    """The metrics of one trained folder on the test pairs (``train_laviter.evaluate_alignment``)."""
    from transformers import AutoTokenizer

    from mmquant.data.pairs import load_caption_mnist_pairs
    from mmquant.models.laviter import LaviterModel

    model = LaviterModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    sizes = {"train": args.train_examples, "test": args.test_examples}
    c = model.config
    _, pairs = load_caption_mnist_pairs(
        args.dataset_config, sizes, c.text_config.max_length, args.dataset_cache_dir, tokenizer
    )
    test = pairs["test"].resized(c.vision_config.image_size).head(args.eval_images)
    metrics, _ = train_laviter.evaluate_alignment(model, tokenizer, test, args.r_precision_candidates)
    return {k: round(float(v), 4) for k, v in metrics.items()}


def _entry(values: dict, **fields) -> dict:
    return {**fields, "metrics": [{"metric": k, "split": "test", "value": v} for k, v in values.items()]}


def main(args) -> dict:
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    command, commit = command_line(), git_commit(HERE)
    dataset = f"caption_mnist/{args.dataset_config}"
    rows: dict[str, dict[int, dict]] = {}
    for spec in args.models:
        name, _, folders = spec.partition("=")
        for position, folder in enumerate(folders.split(",")):
            seed = _seed(folder, position)
            if seed in rows.setdefault(name, {}):
                raise ValueError(f"--models {name}: two folders have seed {seed}; give one folder per seed.")
            rows[name][seed] = evaluate_folder(folder, args)
            print(json.dumps({"model": name, "seed": seed, **rows[name][seed]}))
    common = {"dataset": dataset, "test_pairs": args.eval_images, "command": command, "commit": commit}
    entries, lines = {}, ["| model | seed | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, seeds in rows.items():
        summary = seed_summary(seeds.values())
        for seed, values in sorted(seeds.items()):
            entries[f"ablation/{name}/seed{seed}"] = _entry(values, model=name, seed=seed, **common)
            lines.append(f"| {name} | {seed} | " + " | ".join(_cell(values, k) for k in COLUMNS) + " |")
        entries[f"ablation/{name}"] = _entry(summary, model=name, seeds=sorted(seeds), **common)
        cells = [_cell(summary, k) + (f" ± {summary[k + '_std']:g}" if k in summary else "") for k in COLUMNS]
        lines.append(f"| **{name}** | mean ± std | " + " | ".join(cells) + " |")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(entries, indent=2) + "\n")
    (out / "evaluation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.results_file:
        for key, entry in entries.items():
            merge_result(args.results_file, key, entry)
    return entries


def _cell(values: dict, key: str) -> str:
    return f"{values[key]:g}" if key in values else ""


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="evaluate_laviter.py"))
