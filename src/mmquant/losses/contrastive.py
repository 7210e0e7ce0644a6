"""Ranking losses that align paired image and text embeddings.

* :func:`max_hinge_loss`: the max-of-hinges loss with the hardest negatives of VSE++ (Faghri, Fleet, Kiros, Fidler,
  "VSE++: Improving Visual-Semantic Embeddings with Hard Negatives", BMVC 2018, arXiv:1707.05612, eq. 5), the
  L_MH term of jWAE-MH (Mahajan et al., "Joint Wasserstein Autoencoders for Aligning Multimodal Embeddings", ICCV
  Workshops 2019); with ``hardest_negatives=False`` it is the sum-of-hinges loss (VSE0, eq. 3).
* :func:`paired_mse_loss`: the squared distance between paired embeddings (the jWAE-MSE variant).
* :func:`word_region_scores`, :func:`symmetric_matching_loss`, :func:`damsm_loss`: the symmetric global–local
  matching of AttnGAN's DAMSM (Xu et al., CVPR 2018, eqs. 7-13) as LAViTeR writes it (eqs. 4-8): every word attends
  over the image regions, the word–context cosines pool into one image–caption score, and a softmax over the batch
  makes the paired image and caption each other's most likely match, in both directions, at word and sentence level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["damsm_loss", "max_hinge_loss", "paired_mse_loss", "symmetric_matching_loss", "word_region_scores"]


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


def word_region_scores(
    words: Tensor, word_mask: Tensor, regions: Tensor, gamma1: float = 4.0, gamma2: float = 5.0
) -> Tensor:
    """The matching score R(Q_j, D_i) of every caption i with every image j, ``(B_text, B_image)``.

    Args:
        words: ``(Bt, T, D)`` word features e; ``word_mask``: ``(Bt, T)``, 1 for words, 0 for padding.
        regions: ``(Bi, R, D)`` region features v.
        gamma1: sharpness of the attention over regions (eq. 4); gamma2: magnification of the best-matching word
            (eq. 5).
    """
    longest = int(word_mask.sum(1).max())  # trailing padding takes no part: drop it (exact, and much cheaper)
    words, word_mask = words[:, :longest], word_mask[:, :longest]
    keep = word_mask.bool()[:, None, :, None]  # (Bt, 1, T, 1)
    e, v = words.float(), regions.float()
    s = torch.einsum("itd,jrd->ijtr", e, v)  # (Bt, Bi, T, R): e_t . v_r
    attn = s.masked_fill(~keep, float("-inf")).softmax(dim=2).nan_to_num(0.0)  # eq. 4: softmax along words
    alpha = (gamma1 * attn).softmax(dim=3)  # eq. 4: then along regions
    # R(c_t, e_t) = cos(c_t, e_t) with c_t = sum_r alpha_tr v_r, without building c_t (B x B x T x D):
    # c_t . e_t = sum_r alpha_tr (v_r . e_t) and |c_t|^2 = alpha_t^T (V V^T) alpha_t
    dot = (alpha * s).sum(-1)  # (Bt, Bi, T)
    gram = v @ v.transpose(1, 2)  # (Bi, R, R)
    context_sq = (torch.einsum("ijtr,jrs->ijts", alpha, gram) * alpha).sum(-1).clamp(min=0)  # (Bt, Bi, T)
    norms = context_sq.sqrt().clamp(min=1e-8) * e.norm(dim=-1).clamp(min=1e-8)[:, None]  # (Bt, Bi, T)
    cosine = (dot / norms).masked_fill(~keep[..., 0], float("-inf"))
    return torch.logsumexp(gamma2 * cosine, dim=2) / gamma2  # eq. 5


def symmetric_matching_loss(scores: Tensor, gamma3: float = 10.0) -> tuple[Tensor, Tensor]:
    """``scores (B, B)``, row i a caption, column j an image, paired on the diagonal -> the two negative
    log-posteriors of eqs. 6-7 (image given caption, caption given image), each averaged over the batch.

    ``scores (B, B + N)``: the N last columns are images without a caption, extra negatives of the image-given-caption
    posterior only."""
    if scores.ndim != 2 or scores.shape[1] < scores.shape[0]:
        raise ValueError(
            f"scores: expected a (batch, batch) matrix, or (batch, batch + negatives), got {tuple(scores.shape)}."
        )
    logits = gamma3 * scores.float()
    batch = len(scores)
    labels = torch.arange(batch, device=scores.device)
    return F.cross_entropy(logits, labels), F.cross_entropy(logits[:, :batch].T, labels)


def damsm_loss(
    words: Tensor,
    word_mask: Tensor,
    sentence: Tensor,
    regions: Tensor,
    global_features: Tensor,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
    negative_regions: Tensor | None = None,
    negative_global: Tensor | None = None,
) -> Tensor:
    """L_VTA of eq. 8: ``L_w1 + L_w2`` (word–region, eqs. 4-7) ``+ L_s1 + L_s2`` (sentence–image cosines in
    eqs. 5-7), for a batch of paired captions ``(words (B, T, D), word_mask, sentence (B, D))`` and images
    ``(regions (B, R, D), global_features (B, D))``. ``negative_regions (N, R, D)`` and ``negative_global (N, D)``:
    images no caption describes, extra candidates each caption must rank below its own image (eqs. 6 and 7's
    image-given-caption posteriors only)."""
    if len(words) != len(regions) or len(sentence) != len(global_features) or len(words) != len(sentence):
        raise ValueError(
            f"captions ({len(words)}) and images ({len(regions)}): expected paired batches of the same size."
        )
    if (negative_regions is None) != (negative_global is None):
        raise ValueError("negative_regions, negative_global: pass both (the same negative images) or neither.")
    if negative_regions is not None:
        regions = torch.cat([regions, negative_regions])  # (B + N, R, D)
        global_features = torch.cat([global_features, negative_global])  # (B + N, D)
    word_1, word_2 = symmetric_matching_loss(word_region_scores(words, word_mask, regions, gamma1, gamma2), gamma3)
    cosine = F.normalize(sentence.float(), dim=-1) @ F.normalize(global_features.float(), dim=-1).T  # (B, B + N)
    sentence_1, sentence_2 = symmetric_matching_loss(cosine, gamma3)
    return word_1 + word_2 + sentence_1 + sentence_2
