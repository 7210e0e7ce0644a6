"""Ranking losses that align paired image and text embeddings.

* :func:`max_hinge_loss`: the max-of-hinges loss with the hardest negatives of VSE++ (Faghri, Fleet, Kiros, Fidler,
  "VSE++: Improving Visual-Semantic Embeddings with Hard Negatives", BMVC 2018, arXiv:1707.05612, eq. 5), the
  L_MH term of jWAE-MH (Mahajan et al., "Joint Wasserstein Autoencoders for Aligning Multimodal Embeddings", ICCV
  Workshops 2019); with ``hardest_negatives=False`` it is the sum-of-hinges loss (VSE0, eq. 3).
* :func:`paired_mse_loss`: the squared distance between paired embeddings (the jWAE-MSE variant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["max_hinge_loss", "paired_mse_loss"]


def _check_pair(image_embeds: Tensor, text_embeds: Tensor) -> None:
    if image_embeds.ndim != 2 or text_embeds.ndim != 2 or image_embeds.shape != text_embeds.shape:
        raise ValueError(
            f"image_embeds {tuple(image_embeds.shape)} and text_embeds {tuple(text_embeds.shape)}: expected two "
            "(batch, dim) tensors of the same shape, row i of each being a matching pair."
        )


def max_hinge_loss(
    image_embeds: Tensor, text_embeds: Tensor, margin: float = 0.2, hardest_negatives: bool = True
) -> Tensor:
    """Bidirectional hinge ranking loss on cosine similarities, averaged over the batch.

    Args:
        image_embeds / text_embeds: ``(B, D)``, row i of each a matching pair (normalised here).
        margin: the hinge margin α (0.2 in VSE++ and jWAE).
        hardest_negatives: only the hardest negative of each query counts (VSE++ MH, eq. 5); else all (eq. 3).
    """
    _check_pair(image_embeds, text_embeds)
    scores = F.normalize(image_embeds.float(), dim=-1) @ F.normalize(text_embeds.float(), dim=-1).T  # (B, B)
    positive = scores.diagonal()  # (B,)
    eye = torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    cost_text = (margin + scores - positive[:, None]).clamp(min=0).masked_fill(eye, 0)  # image query, caption negs
    cost_image = (margin + scores - positive[None, :]).clamp(min=0).masked_fill(eye, 0)  # caption query, image negs
    if hardest_negatives:
        return cost_text.max(dim=1).values.mean() + cost_image.max(dim=0).values.mean()
    return cost_text.sum(dim=1).mean() + cost_image.sum(dim=0).mean()


def paired_mse_loss(image_embeds: Tensor, text_embeds: Tensor) -> Tensor:
    """``mean_i ||v_i - t_i||^2 / D``: pulls each pair together without negatives (jWAE-MSE)."""
    _check_pair(image_embeds, text_embeds)
    return F.mse_loss(image_embeds.float(), text_embeds.float())
