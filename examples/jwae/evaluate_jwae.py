"""Cross-modal retrieval of trained jWAE / VSE++ models on Caption MNIST configurations, in one table: each model on
the configuration it was trained on and on others (the paper's cross-dataset generalization finding, in small).

    python examples/jwae/evaluate_jwae.py \\
        --models jwae-mh=outputs/jwae-quad2 vsepp=outputs/vsepp-quad2 \\
        --dataset_configs quad2 quad3 --results_file examples/jwae/results/caption_mnist.json

For each model and configuration: Recall@1/5/10 and median rank for image->text and text->image on the first
``--test_examples`` test pairs, and rsum (the sum of the six recalls), as the results entry ``<model>@<config>``
with the command and commit; away from the training configuration the entry also holds the rsum drop.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant.arguments import make_parser
from mmquant.data.caption_mnist import DEFAULT_COLORS  # noqa: F401  (documents the palette the captions use)
from mmquant.metrics.retrieval import cross_modal_retrieval
from mmquant.training import command_line, git_commit, merge_result

try:
    from jwae_data import load_split
    from train_jwae import embed
except ImportError:  # pragma: no cover
    from .jwae_data import load_split
    from .train_jwae import embed

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--models", nargs="+", required=True, help="name=folder of a trained model (save_pretrained)")
    p.add_argument(
        "--dataset_configs", nargs="+", default=["quad2", "quad3", "quad4"], help="Caption MNIST configurations"
    )
    p.add_argument("--test_examples", type=int, default=1000, help="Caption MNIST test pairs per layout (the gallery)")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument(
        "--results_file",
        default=None,
        help="also merge the figures into this results file (the card's: "
        "examples/jwae/results/caption_mnist.json); none by default",
    )
    p.add_argument("--num_threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    for spec in args.models:
        if "=" not in spec:
            p.error(f"--models {spec!r}: expected name=folder")
    return args


def main(args) -> dict:
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    command, commit = command_line(), git_commit(HERE)
    rows = []
    for spec in args.models:
        name, folder = spec.split("=", 1)
        model = AutoModel.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        trained = (
            json.loads((Path(folder) / "eval_results.json").read_text())
            if (Path(folder) / "eval_results.json").exists()
            else {}
        )
        for config_name in args.dataset_configs:
            data_args = argparse.Namespace(
                dataset="caption_mnist",
                dataset_config=config_name,
                train_examples=0,
                test_examples=args.test_examples,
                dataset_cache_dir=args.dataset_cache_dir,
            )
            pairs = load_split(data_args, "test", tokenizer, model.config.max_text_length, model.config.image_size)
            image_embeds, text_embeds = embed(model, pairs)
            scores = cross_modal_retrieval(image_embeds, text_embeds, pairs.text_to_image)
            rows.append(
                {
                    "model": name,
                    "trained_on": trained.get("dataset", "unknown"),
                    "train_steps": trained.get("steps"),
                    "test_on": f"caption_mnist/{config_name}",
                    "test_images": pairs.num_images,
                    **{k: round(float(v), 2) for k, v in scores.items()},
                }
            )
            print(json.dumps(rows[-1]))
    entries = {}
    for row in rows:  # one results entry per (model, test configuration), in the model-card format
        metrics = [
            {"metric": k, "split": "test", "value": row[k]} for k in row if k.startswith(("i2t_", "t2i_", "rsum"))
        ]
        entries[f"{row['model']}@{row['test_on'].split('/')[-1]}"] = {
            "model": row["model"],
            "dataset": row["test_on"],
            "trained_on": row["trained_on"],
            "test_images": row["test_images"],
            "command": command,
            "commit": commit,
            "metrics": metrics,
        }
    for row in rows:  # how much each model loses away from its training configuration
        own = next((r for r in rows if r["model"] == row["model"] and r["test_on"] == r["trained_on"]), None)
        if own is None or row is own:
            continue
        drop = own["rsum"] - row["rsum"]
        entries[f"{row['model']}@{row['test_on'].split('/')[-1]}"]["metrics"] += [
            {"metric": "rsum_drop_from_training_config", "split": "test", "value": round(drop, 2)},
            {"metric": "relative_rsum_drop", "split": "test", "value": round(drop / max(own["rsum"], 1e-9), 4)},
        ]
    if args.results_file:
        for key, entry in entries.items():
            merge_result(args.results_file, key, entry)
    return entries


if __name__ == "__main__":
    main(parse_args())
