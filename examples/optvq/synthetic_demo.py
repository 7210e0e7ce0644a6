"""Offline demo: build the tiny OptVQ tokenizer, fit it briefly on synthetic images, quantize a batch, save it,
reload it with `AutoModel.from_pretrained` (after `import mmquant`, no trust_remote_code), and print code usage.

    python examples/optvq/synthetic_demo.py [--steps 60] [--model test] [--output_dir outputs/optvq-demo]
"""

from __future__ import annotations

import math

import torch
from transformers import AutoModel

import mmquant
from mmquant.arguments import make_parser
from mmquant.data import synthetic_images
from mmquant.quantizers import CodebookUsage


def parse_args(argv=None):
    parser = make_parser(__doc__)
    parser.add_argument("--model", default="test", choices=mmquant.list_models("optvq"), help="named size")
    parser.add_argument("--steps", type=int, default=60, help="training steps on synthetic images (0 = none)")
    parser.add_argument("--batch_size", type=int, default=32, help="training batch size")
    parser.add_argument(
        "--output_dir", default="outputs/optvq-demo", help="where the model is saved and reloaded from"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed")
    return parser.parse_args(argv)


def main(args) -> dict:
    torch.manual_seed(args.seed)
    model = mmquant.create_model(args.model)
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model!r}: {n_params:,} parameters, {cfg.image_size}x{cfg.image_size} images -> "
        f"{cfg.tokens_per_image} tokens from {cfg.quantizer_config['codebook_size']} codes "
        f"({cfg.quantizer_config['type']})"
    )
    train = synthetic_images(512, cfg.image_size, cfg.in_channels, seed=args.seed)
    test = synthetic_images(128, cfg.image_size, cfg.in_channels, seed=args.seed + 1)

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(args.steps):
        batch = train[torch.randint(0, len(train), (args.batch_size,))]
        out = model(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if step % 20 == 0 or step == args.steps - 1:
            print(
                f"step {step:3d}  loss {out.loss.item():.4f}  batch usage {out.usage.item():.1%}  "
                f"perplexity {out.perplexity.item():.1f}"
            )

    model.eval()
    meter = CodebookUsage(cfg.quantizer_config["codebook_size"])
    with torch.no_grad():
        indices = model.encode_to_indices(test)
        meter.update(indices)
        recon = model.decode_indices(indices).clamp(0, 1)
    mse = torch.mean((recon - test) ** 2).item()
    psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
    stats = meter.compute()

    model.save_pretrained(args.output_dir)
    reloaded = AutoModel.from_pretrained(args.output_dir).eval()
    same = torch.equal(reloaded.encode_to_indices(test), indices)
    print(f"quantized {len(test)} test images -> indices {tuple(indices.shape)}")
    print(
        f"test-set code usage {stats['usage']:.1%} ({stats['dead_codes']} dead codes), perplexity "
        f"{stats['perplexity']:.1f}, PSNR {psnr:.2f} dB"
    )
    print(f"saved to {args.output_dir}; reloaded as {type(reloaded).__name__} with identical codes: {same}")
    if not same:
        raise SystemExit("reloaded model gives different codes")
    return {"usage": stats["usage"], "perplexity": stats["perplexity"], "psnr": psnr, "reload_identical": same}


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="synthetic_demo.py"))
