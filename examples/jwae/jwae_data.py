"""The retrieval data of the jWAE scripts: Caption MNIST generated offline (one caption per image), or a local
COCO / Flickr30k folder through the datasets issue's builders (five captions per image), optionally with
precomputed image features."""

from __future__ import annotations

from pathlib import Path

from mmquant.data.builders import build_dataset
from mmquant.data.caption_grammar import caption_vocabulary
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.pairs import CaptionPairs
from mmquant.data.retrieval_pairs import RetrievalPairs
from mmquant.data.tokenizer import train_caption_tokenizer

# the split used for testing by each builder
TEST_SPLIT = {"caption_mnist": "test", "coco_captions": "test", "flickr30k_captions": "test"}


def add_data_arguments(p) -> None:
    p.add_argument(
        "--dataset", default="caption_mnist", choices=sorted(TEST_SPLIT), help="builder (COCO/Flickr30k: --data_dir)"
    )
    p.add_argument(
        "--dataset_config", default=None, help="Caption MNIST: single, quad1 ... quad4 (default quad2); COCO: karpathy"
    )
    p.add_argument("--data_dir", default=None, help="the local COCO / Flickr30k folder (see the dataset cards)")
    p.add_argument("--image_features", default=None, help="safetensors file of per-split (rows, F) image features")
    p.add_argument("--train_examples", type=int, default=20000, help="Caption MNIST training pairs to generate")
    p.add_argument("--test_examples", type=int, default=1000, help="test images (Caption MNIST: pairs generated)")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache (default: ~/.cache/huggingface/datasets)")


def _features(path: str | None, split: str):
    if path is None:
        return None
    from safetensors.torch import load_file

    tensors = load_file(path)
    if split not in tensors:
        raise ValueError(f"--image_features {path}: no tensor named {split!r} (found {sorted(tensors)}).")
    return tensors[split]


def caption_mnist(args, splits=("train", "test")):
    """The Caption MNIST ``args.dataset_config`` splits (generated offline, cached)."""
    sizes = {"train": args.train_examples, "test": args.test_examples}
    return build_dataset(
        "caption_mnist",
        args.dataset_config or "quad2",
        cache_dir=args.dataset_cache_dir,
        num_examples={split: sizes[split] for split in splits},
    )


def load_split(args, split: str, tokenizer, max_length: int, image_size: int | None) -> RetrievalPairs:
    """One split of ``args.dataset`` as a retrieval gallery."""
    if args.dataset == "caption_mnist":
        splits = (split,) if split == "test" and not args.train_examples else ("train", "test")
        pairs = CaptionPairs.from_dataset(caption_mnist(args, splits)[split], tokenizer, max_length)
        return RetrievalPairs.from_caption_pairs(pairs.resized(image_size) if image_size else pairs)
    if args.data_dir is None:
        raise ValueError(f"--dataset {args.dataset} reads a local folder: pass --data_dir (see its dataset card).")
    ds = build_dataset(
        args.dataset, args.dataset_config, data_dir=Path(args.data_dir), cache_dir=args.dataset_cache_dir
    )
    rows = ds[split]
    if split != "train" and args.test_examples:
        rows = rows.select(range(min(args.test_examples, len(rows))))
    return RetrievalPairs.from_dataset(rows, tokenizer, max_length, image_size, _features(args.image_features, split))


def make_tokenizer(args, max_length: int):
    """A word-level tokenizer trained on the training captions (Caption MNIST: plus the grammar's closed vocabulary,
    so every Caption MNIST configuration shares it)."""
    if args.dataset == "caption_mnist":
        ds = caption_mnist(args)["train"]
        return train_caption_tokenizer(
            ds["caption"], model_max_length=max_length, extra_words=caption_vocabulary(DEFAULT_COLORS)
        )
    ds = build_dataset(
        args.dataset, args.dataset_config, data_dir=Path(args.data_dir), cache_dir=args.dataset_cache_dir
    )
    captions = [c for row in ds["train"]["captions"] for c in row]
    return train_caption_tokenizer(captions, model_max_length=max_length, min_frequency=4)  # VSE++'s threshold
