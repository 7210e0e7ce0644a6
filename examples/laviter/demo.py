"""Caption an image and generate an image from a caption with a trained LAViTeR folder, offline.

    python examples/laviter/demo.py                                                  # the shipped checkpoint
    python examples/laviter/demo.py --caption "The red 7 is on the upper left, and the 3 on the bottom right is blue."
    python examples/laviter/demo.py --image my.png --model outputs/laviter-quad2-joint

Without ``--image`` the image to caption is Caption MNIST Quad2 test pair ``--index`` (generated offline); without
``--caption`` the caption to draw is that pair's. Prints the generated caption and the cosine similarity of the
image with its true and its generated caption, and writes ``--output`` (default ``outputs/laviter-demo.png``): the
image with the generated caption beside the image generated from the caption, at every generator stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import mmquant
from mmquant.arguments import make_parser
from mmquant.user_errors import check_input_paths

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument(
        "--model",
        default="laviter-caption-mnist",
        help="a zoo name or a LaviterModel folder",
    )
    p.add_argument("--image", default=None, help="an image file to caption (resized to the model's size)")
    p.add_argument("--caption", default=None, help="a caption to draw")
    p.add_argument("--index", type=int, default=0, help="the Caption MNIST Quad2 test pair to use otherwise")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--output", default="outputs/laviter-demo.png", help="the PNG written")
    args = p.parse_args(argv)
    check_input_paths(p, args, model="model", image="file", dataset_cache_dir="dir")
    return args


def main(args) -> dict:
    from PIL import Image
    from transformers import AutoModel, AutoTokenizer

    from mmquant.data.collate import image_to_tensor
    from mmquant.data.pairs import load_caption_mnist_pairs, tokenize_captions
    from mmquant.training import save_captioned_grid

    folder = mmquant.zoo.resolve(args.model)  # a zoo name: the checkpoint shipped inside the package
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    size, length = model.config.vision_config.image_size, model.config.text_config.max_length
    truth = None
    if args.image is None or args.caption is None:
        sizes = {"test": args.index + 1}
        _, pairs = load_caption_mnist_pairs("quad2", sizes, length, args.dataset_cache_dir, tokenizer)
        pair = pairs["test"].resized(size)
        truth = pair.captions[args.index]
    if args.image is not None:
        with Image.open(args.image) as im:
            pixels = image_to_tensor(im, size, name=f"--image {args.image}")[None]  # (1, 3, size, size) in [-1, 1]
    else:
        pixels = pair.pixel_values(slice(args.index, args.index + 1))
    caption = args.caption or truth
    ids = tokenize_captions(tokenizer, [caption], length)
    generated_ids = model.generate_captions(pixels)
    generated = tokenizer.batch_decode(generated_ids, skip_special_tokens=True)[0]
    with torch.no_grad():
        image = F.normalize(model.get_image_features(pixels), dim=-1)
        texts = F.normalize(model.get_text_features(torch.cat([ids, generated_ids])), dim=-1)
    similarity = (image @ texts.T)[0].tolist()
    stages = model.generate_images(ids, generator=torch.Generator().manual_seed(args.seed), all_stages=True)
    drawn = [F.interpolate(x, size=(size, size), mode="nearest") for x in stages]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [f"caption: {generated}"] + [f"stage {i + 1} from: {caption}" for i in range(len(drawn))]
    save_captioned_grid(torch.cat([pixels, *drawn]), labels, out, columns=len(labels))
    print(f"generated caption: {generated}")
    print(f"image vs caption {caption!r}: cosine {similarity[0]:+.3f}; vs the generated caption: {similarity[1]:+.3f}")
    print(f"wrote {out}")
    return {"generated_caption": generated, "similarity": similarity, "output": str(out)}


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="demo.py"))
