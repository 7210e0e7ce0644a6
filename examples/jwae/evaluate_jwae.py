"""Cross-modal retrieval of trained jWAE / VSE++ models on Caption MNIST configurations, in one table: each model on
the configuration it was trained on and on others (the paper's cross-dataset generalization finding, in small).

    python examples/jwae/evaluate_jwae.py \\
        --models jwae-mh=outputs/jwae-quad2-s0,outputs/jwae-quad2-s1,outputs/jwae-quad2-s2 \\
                 vsepp=outputs/vsepp-quad2-s0,outputs/vsepp-quad2-s1,outputs/vsepp-quad2-s2 \\
        --dataset_configs quad2 quad3 quad4 --results_file examples/jwae/results/caption_mnist.json

``--models`` takes ``name=folder`` or, for a seeded comparison, ``name=folder,folder,...`` (one trained folder per
seed, the seed read from its ``args.json``). For each model, seed and configuration: Recall@1/5/10 and median rank
for image->text and text->image on the first ``--test_examples`` test pairs and rsum (the sum of the six recalls), as
the results entry ``<model>/seed<k>@<config>``; away from the training configuration the entry also holds the rsum
drop. The entry ``<model>@<config>`` holds the mean over seeds (and ``<metric>_std``, the sample standard deviation,
when there are several), so the card shows mean ± std beside the per-seed rows. Every entry also records
``content_ceiling_recall@1``: the Recall@1 of a perfect content read-out on that test set, ties broken at random
(captions that describe the same objects cannot tell their images apart).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant.arguments import make_parser
from mmquant.data.pairs import CaptionPairs
from mmquant.data.retrieval_pairs import RetrievalPairs
from mmquant.metrics.retrieval import cross_modal_retrieval
from mmquant.training import command_line, git_commit, merge_result

try:
    from jwae_data import caption_mnist
    from probe_jwae import content_ceiling
    from train_jwae import embed
except ImportError:  # pragma: no cover
    from .jwae_data import caption_mnist
    from .probe_jwae import content_ceiling
    from .train_jwae import embed

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument(
        "--models",
        nargs="+",
        required=True,
        help="name=folder of a trained model (save_pretrained), or name=folder,folder,... for one folder per seed",
    )
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
        if "=" not in spec or not all(spec.split("=", 1)[1].split(",")):
            p.error(f"--models {spec!r}: expected name=folder or name=folder,folder,...")
    if args.test_examples < 2:
        p.error(f"--test_examples {args.test_examples}: expected at least 2 test pairs")
    for spec in args.models:  # one folder per seed: each must exist, before any model loads
        for folder in spec.split("=", 1)[1].split(","):
            if not Path(folder).is_dir():
                found = "is a file" if Path(folder).is_file() else "does not exist"
                p.error(f"--models {spec}: {folder} {found}; expected an existing folder.")
    return args


_SUMMARY = ("i2t_recall@1", "i2t_recall@5", "i2t_recall@10", "t2i_recall@1", "t2i_recall@5", "t2i_recall@10", "rsum")


def _seed(folder: str, position: int) -> int:
    args = Path(folder) / "args.json"
    return int(json.loads(args.read_text()).get("seed", position)) if args.is_file() else position


def _test_split(config_name: str, args):
    data_args = argparse.Namespace(
        dataset="caption_mnist",
        dataset_config=config_name,
        train_examples=0,
        test_examples=args.test_examples,
        dataset_cache_dir=args.dataset_cache_dir,
    )
    return caption_mnist(data_args, ("test",))["test"]


def _metrics(values: dict) -> list[dict]:
    return [{"metric": k, "split": "test", "value": v} for k, v in values.items()]


def main(args) -> dict:
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    command, commit = command_line(), git_commit(HERE)
    runs = []  # (model name, seed, folder)
    for spec in args.models:
        name, folders = spec.split("=", 1)
        seeds = [_seed(folder, position) for position, folder in enumerate(folders.split(","))]
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"--models {spec}: the folders' seeds {seeds} repeat; give one folder per seed.")
        runs += [(name, seed, folder) for seed, folder in zip(seeds, folders.split(","))]
    tests = {name: _test_split(name, args) for name in args.dataset_configs}
    ceilings = {name: round(content_ceiling(ds["objects"]), 2) for name, ds in tests.items()}
    rows = []
    for name, seed, folder in runs:
        model = AutoModel.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        trained_file = Path(folder) / "eval_results.json"
        trained = json.loads(trained_file.read_text()) if trained_file.exists() else {}
        for config_name, ds in tests.items():
            pairs = RetrievalPairs.from_caption_pairs(
                CaptionPairs.from_dataset(ds, tokenizer, model.config.max_text_length).resized(model.config.image_size)
            )
            image_embeds, text_embeds = embed(model, pairs)
            scores = cross_modal_retrieval(image_embeds, text_embeds, pairs.text_to_image)
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "trained_on": trained.get("dataset", "unknown"),
                    "train_steps": trained.get("steps"),
                    "test_on": f"caption_mnist/{config_name}",
                    "test_images": pairs.num_images,
                    **{k: round(float(v), 2) for k, v in scores.items()},
                }
            )
            print(json.dumps(rows[-1]))
    seeded = {
        r["model"] for r in rows if sum(o["model"] == r["model"] and o["test_on"] == r["test_on"] for o in rows) > 1
    }
    entries = {}
    for row in rows:  # one results entry per (model, seed, test configuration), in the model-card format
        config_name = row["test_on"].split("/")[-1]
        own = next(
            (
                r
                for r in rows
                if r["model"] == row["model"] and r["seed"] == row["seed"] and r["test_on"] == r["trained_on"]
            ),
            None,
        )
        values = {k: row[k] for k in row if k.startswith(("i2t_", "t2i_", "rsum"))}
        if own is not None and own is not row:  # how much the model loses away from its training configuration
            drop = own["rsum"] - row["rsum"]
            values |= {"rsum_drop_from_training_config": round(drop, 2)}
            values |= {"relative_rsum_drop": round(drop / max(own["rsum"], 1e-9), 4)}
        values["content_ceiling_recall@1"] = ceilings[config_name]
        key = (
            f"{row['model']}/seed{row['seed']}@{config_name}"
            if row["model"] in seeded
            else f"{row['model']}@{config_name}"
        )
        row["values"] = values
        entries[key] = {
            "model": row["model"],
            "seed": row["seed"],
            "dataset": row["test_on"],
            "trained_on": row["trained_on"],
            "train_steps": row["train_steps"],
            "test_images": row["test_images"],
            "command": command,
            "commit": commit,
            "metrics": _metrics(values),
        }
    for name in sorted(seeded):  # mean and standard deviation over seeds
        for config_name in tests:
            group = [r for r in rows if r["model"] == name and r["test_on"] == f"caption_mnist/{config_name}"]
            summary = {}
            for metric in (*_SUMMARY, "rsum_drop_from_training_config"):
                values = torch.tensor(
                    [r["values"][metric] for r in group if metric in r["values"]], dtype=torch.float64
                )
                if len(values):
                    summary[metric] = round(float(values.mean()), 2)
                    summary[f"{metric}_std"] = round(float(values.std()), 2) if len(values) > 1 else 0.0
            summary["content_ceiling_recall@1"] = ceilings[config_name]
            entries[f"{name}@{config_name}"] = {
                "model": name,
                "seeds": sorted(r["seed"] for r in group),
                "dataset": f"caption_mnist/{config_name}",
                "trained_on": group[0]["trained_on"],
                "train_steps": group[0]["train_steps"],
                "test_images": group[0]["test_images"],
                "command": command,
                "commit": commit,
                "metrics": _metrics(summary),
            }
    if args.results_file:
        for key, entry in entries.items():
            merge_result(args.results_file, key, entry)
    return entries


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="evaluate_jwae.py"))
