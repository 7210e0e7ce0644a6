"""Whole-set evaluation of an image tokenizer: PSNR of its reconstructions and the code usage over the set."""

from __future__ import annotations

import torch

from ..quantizers import CodebookUsage
from .functional import psnr

__all__ = ["evaluate_reconstruction"]


@torch.no_grad()
def evaluate_reconstruction(model, images: torch.Tensor, batch_size: int = 500, value_range=(-1.0, 1.0)) -> dict:
    """PSNR (dB, on images rescaled to [0, 1]) and whole-set code usage/perplexity of ``model`` on ``images``.

    Runs in eval mode (each feature takes its nearest code) and restores the previous mode. ``images``:
    ``(N, C, H, W)`` in ``value_range``.
    """
    lo, hi = value_range
    was_training = model.training
    model.eval()
    meter = CodebookUsage(model.config.quantizer_config["codebook_size"])
    scores = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        out = model(x)
        meter.update(out.indices)
        recon = ((out.reconstruction.float() - lo) / (hi - lo)).clamp(0, 1)
        scores.append(psnr(recon, ((x.float() - lo) / (hi - lo)), data_range=1.0, reduction="none"))
    model.train(was_training)
    usage = meter.compute()
    return {
        "psnr": torch.cat(scores).mean().item(),
        "usage": usage["usage"],
        "perplexity": usage["perplexity"],
        "dead_codes": usage["dead_codes"],
        "num_images": len(images),
    }
