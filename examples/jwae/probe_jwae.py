"""Probes of trained jWAE / VSE++ models on Caption MNIST: what their latents capture, and what their caption decoder
says about an image.

    python examples/jwae/probe_jwae.py --models jwae-mh=checkpoints/jwae-caption-mnist \\
        --dataset_config quad2 --output_dir outputs/jwae-probe

For each model, on the ``--dataset_config`` test split:

* **Linear read-out**: a multinomial logistic regression, fitted on the latents of ``--fit_examples`` training pairs,
  predicts each quadrant's digit (or "empty") and colour (or "empty") from the image latents and, apart, from the
  caption latents; test accuracy per attribute. A modality whose read-out is far below 1 does not carry that
  attribute, which bounds retrieval.
* **Content ceiling**: Recall@1 of a perfect content read-out (the true (position, digit, colour) set of every test
  pair), ties broken at random: test images that share their content with another image cannot be told apart from
  their captions, so no model retrieves above it.
* **Text->image errors by kind**: of the test captions whose top-1 image is wrong, the share (over all captions) where
  that image has the same content (the ceiling's ties), or differs from the true one in a digit only, in a colour or
  a quadrant: where a model's Recall@1 goes.
* **Decoded captions** (models with a text decoder): captions decoded greedily from the *image* latents, scored by the
  Caption MNIST judge against the image (object accuracy, consistency, parse rate), and how many distinct captions come
  out (a collapsed decoder gives a few).

Writes ``probe.json`` and ``decoded_captions.txt`` under ``--output_dir``; ``--results_file`` merges the figures as
``probe/<model>@<config>`` entries.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant.arguments import make_parser
from mmquant.data.pairs import CaptionPairs
from mmquant.data.retrieval_pairs import RetrievalPairs
from mmquant.metrics.consistency import semantic_consistency
from mmquant.metrics.readout import content_labels, linear_readout
from mmquant.training import command_line, git_commit, merge_result
from mmquant.user_errors import check_input_paths

try:
    from jwae_data import caption_mnist
    from train_jwae import embed
except ImportError:  # pragma: no cover
    from .jwae_data import caption_mnist
    from .train_jwae import embed

HERE = Path(__file__).resolve().parent
_EMPTY = "empty"


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--models", nargs="+", required=True, help="name=folder of a trained jWAE/VSE++ model")
    p.add_argument("--dataset_config", default="quad2", help="Caption MNIST configuration probed (default: quad2)")
    p.add_argument("--fit_examples", type=int, default=4000, help="training pairs the linear read-out is fitted on")
    p.add_argument("--test_examples", type=int, default=1000, help="test pairs probed (default: 1000)")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache for the generated Caption MNIST")
    p.add_argument("--judge", default=None, help="Caption MNIST judge folder (default: the shipped one)")
    p.add_argument("--output_dir", default="outputs/jwae-probe", help="where probe.json is written")
    p.add_argument("--results_file", default=None, help="results file to merge the figures into (off by default)")
    p.add_argument("--num_threads", type=int, default=None, help="torch intra-op threads")
    args = p.parse_args(argv)
    for spec in args.models:
        if "=" not in spec:
            p.error(f"--models {spec!r}: expected name=folder")
    if args.fit_examples < 10 or args.test_examples < 2:
        p.error("--fit_examples must be >= 10 and --test_examples >= 2")
    check_input_paths(p, args, models="dir", judge="dir")
    return args


def content_ceiling(objects_per_pair: list[list[dict]]) -> float:
    """Recall@1 (percent) of a perfect content read-out with random tie-breaking: the mean of 1 / (number of test
    pairs with the same content)."""
    keys = [frozenset((o["position"], int(o["digit"]), o["color"]) for o in objs) for objs in objects_per_pair]
    count = collections.Counter(keys)
    return 100.0 * sum(1.0 / count[k] for k in keys) / len(keys)


def _content(objects: list[dict]) -> dict:
    return {o["position"]: (int(o["digit"]), o["color"]) for o in objects}


def retrieval_errors(image_embeds, text_embeds, text_to_image, objects_per_image: list[list[dict]]) -> dict:
    """Text->image top-1 errors by kind, as shares of all captions: ``same_content`` (the retrieved image shows the
    same objects), ``digit_only`` (same quadrants and colours, some digit differs), ``color`` (same quadrants, some
    colour differs) and ``position`` (the occupied quadrants differ)."""
    scores = F.normalize(text_embeds, dim=-1) @ F.normalize(image_embeds, dim=-1).T  # (T, N)
    top = scores.argmax(1).tolist()
    kinds = collections.Counter()
    for caption, image in enumerate(top):
        true = int(text_to_image[caption])
        if image == true:
            continue
        a, b = _content(objects_per_image[true]), _content(objects_per_image[image])
        if a == b:
            kinds["same_content"] += 1
        elif set(a) != set(b):
            kinds["position"] += 1
        elif any(a[p][1] != b[p][1] for p in a):
            kinds["color"] += 1
        else:
            kinds["digit_only"] += 1
    return {
        f"t2i_errors_{k}": round(kinds[k] / len(top), 4) for k in ("same_content", "digit_only", "color", "position")
    }


def decoded_captions(model, latents: torch.Tensor, tokenizer, batch_size: int = 250) -> list[str]:
    """Greedy captions decoded from ``latents`` ``(N, latent_dim)`` (the test images' latents)."""
    out = []
    for start in range(0, len(latents), batch_size):
        ids = model.generate_captions(latents[start : start + batch_size])
        out += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [" ".join(c.split()) for c in out]


def probe_model(model, tokenizer, train_ds, test_ds, judge) -> tuple[dict, list[str]]:
    max_length, size = model.config.max_text_length, model.config.image_size
    fit = RetrievalPairs.from_caption_pairs(CaptionPairs.from_dataset(train_ds, tokenizer, max_length).resized(size))
    full_size_test = CaptionPairs.from_dataset(test_ds, tokenizer, max_length)  # the judge reads 64x64 canvases
    test = RetrievalPairs.from_caption_pairs(full_size_test.resized(size))
    fit_images, fit_texts = embed(model, fit)
    test_images, test_texts = embed(model, test)
    colors = sorted({o["color"] for objs in train_ds["objects"] for o in objs})
    positions = sorted({o["position"] for objs in train_ds["objects"] for o in objs})
    fit_labels = content_labels(train_ds["objects"], positions, colors)
    test_labels = content_labels(test_ds["objects"], positions, colors)
    result = {}
    for modality, train_x, test_x in (("image", fit_images, test_images), ("text", fit_texts, test_texts)):
        scores = {key: linear_readout(train_x, fit_labels[key], test_x, test_labels[key]) for key in fit_labels}
        for attribute in ("digit", "color"):
            values = [v for k, v in scores.items() if k.endswith(attribute)]
            result[f"{modality}_readout_{attribute}"] = round(sum(values) / len(values), 4)
    result.update(retrieval_errors(test_images, test_texts, test.text_to_image, test_ds["objects"]))
    captions = []
    if hasattr(model, "text_decoder"):
        captions = decoded_captions(model, test_images, tokenizer)
        scores = semantic_consistency(full_size_test.pixel_values(slice(None)), captions, judge)
        result["decoded_object_accuracy"] = round(scores["object_accuracy"], 4)
        result["decoded_consistency"] = round(scores["consistency"], 4)
        result["decoded_parse_rate"] = round(scores["parse_rate"], 4)
        result["decoded_distinct_captions"] = len(set(captions))
    return result, captions


def main(args) -> dict:
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    command, commit = command_line(), git_commit(HERE)
    data_args = argparse.Namespace(
        dataset_config=args.dataset_config,
        train_examples=args.fit_examples,
        test_examples=args.test_examples,
        dataset_cache_dir=args.dataset_cache_dir,
    )
    splits = caption_mnist(data_args)
    train_ds, test_ds = splits["train"], splits["test"]
    ceiling = round(content_ceiling(test_ds["objects"]), 2)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    from mmquant.metrics.consistency import load_judge

    judge = load_judge(args.judge)
    report = {}
    for spec in args.models:
        name, folder = spec.split("=", 1)
        model = AutoModel.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        result, captions = probe_model(model, tokenizer, train_ds, test_ds, judge)
        result["content_ceiling_recall@1"] = ceiling
        report[name] = result
        print(json.dumps({"model": name, **result}))
        if captions:
            (output_dir / f"decoded_captions-{name.replace('/', '_')}.txt").write_text("\n".join(captions) + "\n")
        if args.results_file:
            merge_result(
                args.results_file,
                f"probe/{name}@{args.dataset_config}",
                {
                    "model": name,
                    "dataset": f"caption_mnist/{args.dataset_config}",
                    "test_images": len(test_ds),
                    "fit_examples": len(train_ds),
                    "command": command,
                    "commit": commit,
                    "metrics": [{"metric": k, "split": "test", "value": v} for k, v in result.items()],
                },
            )
    (output_dir / "probe.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="probe_jwae.py"))
