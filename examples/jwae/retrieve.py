"""Retrieve captions for an image with a trained jWAE model, offline.

    python examples/jwae/retrieve.py --model checkpoints/jwae-caption-mnist --index 3
    python examples/jwae/retrieve.py --model checkpoints/jwae-caption-mnist --image my_digits.png --top_k 5
    python examples/jwae/retrieve.py --model ... --image photo.jpg --captions my_captions.txt   # one caption per line

The gallery is ``--captions`` (a text file) or, by default, the captions of the first ``--gallery_size`` Caption
MNIST test pairs of ``--dataset_config`` (generated offline). ``--index`` picks the query image from those pairs (its
own caption is in the gallery and marked). Prints the top captions with their cosine similarity and, when the model
has a text decoder, the caption it decodes from the image's latent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant.arguments import make_parser
from mmquant.data.collate import image_to_tensor
from mmquant.data.pairs import tokenize_captions
from mmquant.metrics.retrieval import rank_gallery
from mmquant.user_errors import check_input_paths

try:
    from jwae_data import load_split
except ImportError:  # pragma: no cover
    from .jwae_data import load_split


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--model", required=True, help="a folder saved by train_jwae.py (or a Hub id when online)")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", help="an image file, resized to the model's image size")
    query.add_argument("--index", type=int, help="a Caption MNIST test pair of the gallery as the query")
    p.add_argument("--captions", help="a text file of gallery captions, one per line")
    p.add_argument("--dataset_config", default="quad2", help="Caption MNIST layout of the gallery pairs")
    p.add_argument("--gallery_size", type=int, default=1000, help="test pairs in the gallery")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--top_k", type=int, default=5, help="captions printed per query")
    args = p.parse_args(argv)
    check_input_paths(p, args, model="model", image="file", captions="file")
    return args


def load_image(path: str, size: int) -> torch.Tensor:
    """``(1, 3, size, size)`` in [-1, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        return image_to_tensor(im, size, name=f"--image {path}")[None]


def main(args) -> list[tuple[float, str]]:
    model = AutoModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    c = model.config
    if c.image_input == "features":
        raise ValueError(f"--model {args.model}: takes precomputed image features; this script embeds image files.")
    truth = None
    if args.captions:
        captions = [line.strip() for line in Path(args.captions).read_text().splitlines() if line.strip()]
        if not captions:
            raise ValueError(f"--captions {args.captions}: no caption in the file.")
        input_ids = tokenize_captions(tokenizer, captions, c.max_text_length)
    else:
        data_args = argparse.Namespace(
            dataset="caption_mnist",
            dataset_config=args.dataset_config,
            train_examples=0,
            test_examples=args.gallery_size,
            dataset_cache_dir=args.dataset_cache_dir,
        )
        pairs = load_split(data_args, "test", tokenizer, c.max_text_length, c.image_size)
        captions, input_ids = pairs.captions, pairs.input_ids
    if args.index is not None:
        if args.captions or not 0 <= args.index < len(captions):
            raise ValueError(
                f"--index {args.index}: expected a pair of the default gallery, 0 to {len(captions) - 1}."
            )
        pixel_values, truth = pairs.image_inputs(torch.tensor([args.index]))["pixel_values"], args.index
    else:
        pixel_values = load_image(args.image, c.image_size)
    top_k = min(args.top_k, len(captions))
    with torch.no_grad():
        image_embeds = model.get_image_features(pixel_values)
        text_embeds = torch.cat(
            [model.get_text_features(input_ids[s : s + 500]) for s in range(0, len(captions), 500)]
        )
    scores, indices = rank_gallery(image_embeds, text_embeds, top_k=top_k)
    results = [(float(s), captions[i]) for s, i in zip(scores[0].tolist(), indices[0].tolist())]
    print(f"top {top_k} of {len(captions)} captions:")
    for rank, ((score, caption), index) in enumerate(zip(results, indices[0].tolist()), start=1):
        mark = "  <- the image's own caption" if index == truth else ""
        print(f"{rank:2d}. {score:+.3f}  {caption}{mark}")
    if hasattr(model, "text_decoder"):
        decoded = tokenizer.decode(model.generate_captions(image_embeds)[0], skip_special_tokens=True)
        print(f"decoded from the image latent: {decoded}")
    return results


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="retrieve.py"))
