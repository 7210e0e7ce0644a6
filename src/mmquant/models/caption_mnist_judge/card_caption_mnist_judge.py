"""What the model card of a Caption MNIST judge checkpoint says (read by :mod:`mmquant.hub.cards` through the
registry). The judge implements MXQ-VAE's semantic-consistency measure: its card cites that paper."""

from __future__ import annotations

from ..card_info import ModelCardInfo

__all__ = ["CAPTION_MNIST_JUDGE_CARD"]

CAPTION_MNIST_JUDGE_CARD = ModelCardInfo(
    task=("image-classification", "reading Caption MNIST canvases"),
    citation_from="mxqvae",
)
