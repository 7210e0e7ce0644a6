"""Convert a reference OptVQ checkpoint (github.com/zbr17/OptVQ) into an mmquant folder.

The released ImageNet tokenizers, straight from the Hub (needs network):

    python examples/optvq/convert_reference_checkpoint.py --checkpoint BorelTHU/optvq-16x16x4 \\
        --output_dir converted/optvq-16x16x4
    python examples/optvq/convert_reference_checkpoint.py --checkpoint BorelTHU/optvq-16x16x8 \\
        --output_dir converted/optvq-16x16x8 --push_to_hub your-name/optvq-16x16x8

A training checkpoint of the reference code with the YAML it was trained with:

    python examples/optvq/convert_reference_checkpoint.py --checkpoint ckpt.pth \\
        --reference_config OptVQ/configs/imagenet/optvq_256_f16_h4.yaml --output_dir converted/my-optvq

The folder (``config.json`` + ``model.safetensors``) loads with ``import mmquant; AutoModel.from_pretrained(folder)``.
Training-only weights (LPIPS, discriminator) are dropped. The quantizer assigns codes by Sinkhorn over the batch at
inference, as the reference does (``model.quantizer.sinkhorn_at_inference = False`` for nearest codes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.models.optvq.convert_reference import model_from_reference


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a Hub repo id or folder in VQModelHF's layout (config.json + model.safetensors), or a weights file "
        "(.safetensors, .pth/.pt/.bin) together with --reference_config",
    )
    p.add_argument(
        "--reference_config",
        default=None,
        help="the reference YAML (e.g. configs/imagenet/optvq_256_f16_h4.yaml) or config.json; default: the "
        "folder's config.json",
    )
    p.add_argument("--output_dir", required=True, help="where the mmquant folder is written (save_pretrained)")
    p.add_argument(
        "--norm_num_groups",
        type=int,
        default=32,
        help="group-norm groups; the reference hard-codes 32 (another value only for a model built with a patched "
        "Normalize, as the reduced-width parity fixture)",
    )
    p.add_argument("--push_to_hub", default=None, metavar="REPO_ID", help="also publish the folder to this Hub repo")
    args = p.parse_args(argv)
    if args.norm_num_groups < 1:
        p.error(f"--norm_num_groups {args.norm_num_groups}: expected a positive integer")
    return args


def main(args) -> Path:
    model = model_from_reference(args.checkpoint, args.reference_config, norm_num_groups=args.norm_num_groups)
    output_dir = Path(args.output_dir)
    model.save_pretrained(output_dir)
    (output_dir / "conversion.json").write_text(
        json.dumps(
            {"source": str(args.checkpoint), "reference_config": args.reference_config, "torch": torch.__version__},
            indent=2,
        )
        + "\n"
    )
    if args.push_to_hub:
        model.push_to_hub(args.push_to_hub)
    q = model.config.quantizer_config
    print(
        f"wrote {output_dir}: {model.config.image_size}x{model.config.image_size} images -> "
        f"{model.config.latent_size}x{model.config.latent_size}x{q.get('num_heads', 1)} codes of "
        f"{q['codebook_size']} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)"
    )
    return output_dir


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="convert_reference_checkpoint.py"))
