"""Sample image–caption pairs from a trained MXQ-VAE pipeline, offline, and check each with the Caption MNIST judge.

    python examples/mxqvae/sample_pairs.py                                   # the shipped Quad4 pipeline
    python examples/mxqvae/sample_pairs.py --caption "The red 7 is on the upper left, the 2 on the upper right \\
        is blue, the white 0 is on the bottom left, and the bottom right 5 is green."       # text -> image
    python examples/mxqvae/sample_pairs.py --pipeline outputs/mxqvae-prior-quad4/pipeline --num_samples 16

Prints each caption with the judge's verdict (does the image show exactly the objects the caption names?) and the
semantic consistency of the batch (MXQ-VAE Table 2's measure); with ``--caption``, also how many of the input
caption's objects the judge finds in each image and the batch's text -> image pair accuracy (images showing exactly
the input caption's objects). Writes ``--output`` (default ``outputs/mxqvae-pairs.png``): the generated images with
their captions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mmquant
from mmquant.arguments import make_parser
from mmquant.data.caption_grammar import parse_caption
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.user_errors import check_input_paths

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument(
        "--pipeline",
        default="mxqvae-caption-mnist-quad4",
        help="a zoo name or an MXQ-VAE pipeline folder (stage 1 + prior + tokenizer)",
    )
    p.add_argument("--num_samples", type=int, default=8, help="pairs to sample")
    p.add_argument("--caption", default=None, help="complete this caption into images (text -> image)")
    p.add_argument("--image", default=None, help="complete this image file into captions (image -> text)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--top_k", type=int, default=10, help="the reference samples with top-k 10")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (default: the pipeline's default_temperature; 1 with --paper_sampling)",
    )
    p.add_argument(
        "--paper_sampling",
        action="store_true",
        help="the paper's procedure: the prior's codes decoded as they are (no low text temperature, no stage-1 "
        "refinement of the caption, one caption per image)",
    )
    p.add_argument("--judge", default=None, help="judge checkpoint (default: checkpoints/caption-mnist-judge)")
    p.add_argument("--output", default="outputs/mxqvae-pairs.png", help="the PNG grid written")
    args = p.parse_args(argv)
    check_input_paths(p, args, pipeline="model", image="file", judge="model")
    return args


def main(args) -> dict:
    from PIL import Image

    from mmquant.metrics.consistency import load_judge, semantic_consistency
    from mmquant.pipelines import MXQVAEPipeline

    pipe = MXQVAEPipeline.from_pretrained(mmquant.zoo.resolve(args.pipeline))  # a zoo name: the shipped copy
    image = None
    if args.image:
        size = pipe.stage1.config.image_size
        image = Image.open(args.image).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    out = pipe(
        num_samples=args.num_samples,
        caption=args.caption,
        image=image,
        seed=args.seed,
        top_k=args.top_k,
        **(MXQVAEPipeline.PAPER_SAMPLING if args.paper_sampling else {})
        | ({} if args.temperature is None else {"temperature": args.temperature}),
    )
    judge = load_judge(args.judge)
    verdicts = [
        semantic_consistency([im], [cap], judge)["consistency"] == 1.0 for im, cap in zip(out.images, out.captions)
    ]
    follows = caption_followed(out.images, args.caption, judge) if args.caption else None
    for i, (caption, ok) in enumerate(zip(out.captions, verdicts)):
        shown = f" | input caption's objects in image: {follows['found'][i]}" if follows else ""
        print(f"[{'match' if ok else 'MISMATCH'}] {caption}{shown}")
    scores = semantic_consistency(out.images, out.captions, judge)
    print({k: round(v, 3) for k, v in scores.items()})
    if follows:
        print(f"text -> image pair accuracy (images showing exactly the input caption's objects): "
              f"{follows['pair_accuracy']:.3f}, object accuracy {follows['object_accuracy']:.3f}")  # fmt: skip
        scores = scores | {"caption_" + k: v for k, v in follows.items() if k != "found"}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    MXQVAEPipeline.save_grid(out, args.output)
    print(f"wrote {args.output}")
    return {"captions": out.captions, "verdicts": verdicts, **scores, "caption_found": follows and follows["found"]}


def caption_followed(images, caption: str, judge) -> dict:
    """Text -> image: per generated image, how many of the input caption's objects the judge reads in it (``"k/n"``,
    or ``"unjudged"`` when the caption does not parse), and over the batch the share of images showing exactly the
    caption's objects (``pair_accuracy``) and of the caption's objects shown (``object_accuracy``)."""
    from mmquant.metrics.consistency import semantic_consistency

    per_image = [semantic_consistency([im], [caption], judge) for im in images]
    if not per_image[0]["parse_rate"]:
        return {"found": ["unjudged (not a Caption MNIST caption)"] * len(images), "pair_accuracy": 0.0,
                "object_accuracy": 0.0}  # fmt: skip
    batch = semantic_consistency(images, [caption] * len(images), judge)
    n = len(parse_caption(caption, DEFAULT_COLORS))
    found = [f"{round(s['object_accuracy'] * n)}/{n}" for s in per_image]
    return {"found": found, "pair_accuracy": batch["consistency"], "object_accuracy": batch["object_accuracy"]}


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="sample_pairs.py"))
