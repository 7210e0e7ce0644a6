"""Pretrain the frozen CNN of jWAE's ``image_input="grid_features"``: a grayscale MNIST digit classifier on
quadrant-sized digits (the Caption MNIST analogue of the ImageNet-trained ResNet whose features the jWAE paper
encodes). It sees MNIST's training digits and their digit labels only: no caption, colour, layout or test image.

    python examples/jwae/pretrain_grid_features.py --output_dir outputs/jwae-grid-features      # ~5 minutes on a CPU
    python examples/jwae/train_jwae.py --config examples/jwae/configs/jwae_quad2.yaml \\
        --grid_features outputs/jwae-grid-features

Each digit is placed as Caption MNIST places it in a 64-pixel canvas's quadrant (28 pixels with a 2-pixel margin,
32x32), resized to ``--crop_size`` (16: a quadrant of the 32-pixel canvases jWAE trains on) and shifted by up to
``--max_shift`` pixels (default one). Writes ``grid_features.safetensors`` (the CNN, without its classifier),
``grid_features.json`` (its shape, the MNIST test accuracy of the classifier, the command and commit) under
``--output_dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from mmquant.arguments import make_parser
from mmquant.data.mnist import add_mnist_arguments, load_mnist
from mmquant.modules.grid_features import INFO, WEIGHTS, DigitCNN
from mmquant.training import command_line, git_commit

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--output_dir", default="outputs/jwae-grid-features", help="where the CNN and its record go")
    p.add_argument("--crop_size", type=int, default=16, help="side of the quadrant crops the CNN will read")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="conv widths per level")
    p.add_argument("--feature_dim", type=int, default=64, help="features per crop and channel")
    p.add_argument("--max_steps", type=int, default=6000, help="optimizer steps")
    p.add_argument("--batch_size", type=int, default=128, help="digits per optimizer step")
    p.add_argument("--learning_rate", type=float, default=3e-3, help="peak of the one-cycle schedule")
    p.add_argument("--train_examples", type=int, default=None, help="MNIST training digits used (default: all)")
    p.add_argument("--max_shift", type=int, default=1, help="training crops are shifted by up to this many pixels")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the batches and the shifts")
    add_mnist_arguments(p)
    args = p.parse_args(argv)
    if args.crop_size < 8 or args.max_steps < 1 or args.batch_size < 1:
        p.error("--crop_size must be >= 8, --max_steps and --batch_size >= 1")
    if not 0 <= args.max_shift < args.crop_size // 2:
        p.error(f"--max_shift {args.max_shift}: expected 0 <= --max_shift < --crop_size / 2")
    return args


def quadrant_digits(images: np.ndarray, crop_size: int) -> torch.Tensor:
    """MNIST digits ``(N, 28, 28)`` uint8 -> ``(N, 1, crop_size, crop_size)`` float in [0, 1]: padded to a 32-pixel
    quadrant as Caption MNIST draws them at 64 pixels, then resized (bicubic) as the training canvases are."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # (N, 32, 32)
    crops = [np.asarray(Image.fromarray(d).resize((crop_size, crop_size), Image.Resampling.BICUBIC)) for d in padded]
    return torch.from_numpy(np.stack(crops)).float().div(255.0)[:, None]


def main(args) -> dict:
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train_images, train_labels = load_mnist("train", source=args.mnist_source, root=args.mnist_root)
    test_images, test_labels = load_mnist("test", source=args.mnist_source, root=args.mnist_root)
    if args.train_examples:
        train_images, train_labels = train_images[: args.train_examples], train_labels[: args.train_examples]
    x_train = quadrant_digits(train_images.numpy(), args.crop_size)  # (N, 1, s, s)
    x_test = quadrant_digits(test_images.numpy(), args.crop_size)

    cnn = DigitCNN(args.crop_size, args.channels, args.feature_dim)
    classifier = torch.nn.Linear(args.feature_dim, 10)
    params = [*cnn.parameters(), *classifier.parameters()]
    optimizer = torch.optim.Adam(params, lr=args.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.learning_rate, total_steps=args.max_steps)
    for step in range(args.max_steps):
        index = torch.randint(len(x_train), (args.batch_size,), generator=generator)
        shift = torch.randint(-args.max_shift, args.max_shift + 1, (2,), generator=generator).tolist()
        x = torch.roll(x_train[index], shifts=shift, dims=(2, 3))  # (B, 1, s, s), up to max_shift pixels off centre
        loss = F.cross_entropy(classifier(cnn(x)), train_labels[index])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        schedule.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}", flush=True)

    with torch.no_grad():
        predictions = torch.cat(
            [classifier(cnn(x_test[s : s + 1000])).argmax(-1) for s in range(0, len(x_test), 1000)]
        )
    accuracy = float((predictions == test_labels).float().mean())
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, str(output_dir / WEIGHTS))
    info = {
        "grid_feature_channels": list(args.channels),
        "grid_feature_dim": args.feature_dim,
        "crop_size": args.crop_size,
        "mnist_test_accuracy": round(accuracy, 4),
        "steps": args.max_steps,
        "max_shift": args.max_shift,
        "command": command_line(),
        "commit": git_commit(HERE),
    }
    (output_dir / INFO).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    return info


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="pretrain_grid_features.py"))
