"""Output dataclasses shared by mmquant's models (transformers ``ModelOutput``: attribute, key and tuple access)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

__all__ = ["VQAutoencoderOutput"]


@dataclass
class VQAutoencoderOutput(ModelOutput):
    """Output of an image tokenizer's ``forward``.

    Args:
        loss: scalar training loss, ``reconstruction_loss + quantizer_loss_weight * quantizer_loss``.
        reconstruction: ``(batch, channels, height, width)`` decoded images.
        reconstruction_loss: scalar, weighted L1 + L2 pixel loss.
        quantizer_loss: scalar, codebook + beta * commitment loss (OptVQ eq. 4).
        indices: ``(batch, h, w)`` code indices, ``(batch, h, w, num_heads)`` when multi-head.
        usage: scalar, fraction of the codebook used by this batch.
        perplexity: scalar, perplexity of this batch's code histogram.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None
    indices: torch.LongTensor | None = None
    usage: torch.FloatTensor | None = None
    perplexity: torch.FloatTensor | None = None
