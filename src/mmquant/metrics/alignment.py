"""Image–text alignment metrics of text-to-image models (pure torch):

* :func:`r_precision`: AttnGAN's R-precision (Xu et al., CVPR 2018), as LAViTeR reports it: each (generated) image
  ranks its true caption among ``num_candidates - 1`` random other captions by the cosine of the image's global
  feature with each caption's sentence feature; the percent of images whose true caption is in the top k.
* :func:`aimcos`: LAViTeR's Attribute to Image Matching Cosine Score (Shaikh et al., arXiv:2109.04993, eq. 17): the
  mean over images of the mean cosine between an image's global feature and the text feature of each attribute
  present in it.

The ``r_precision`` and ``aimcos`` folders beside this file wrap them as evaluate modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["aimcos", "r_precision"]


def _check(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 2 or len(x) == 0:
        raise ValueError(
            f"{name}: expected a non-empty 2-D float tensor (items, dim), got "
            f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}."
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or Inf.")


def r_precision(
    image_embeds: Tensor,
    text_embeds: Tensor,
    num_candidates: int = 100,
    top_k: Sequence[int] = (1, 3),
    seed: int = 0,
    cosine: bool = True,
) -> dict[str, float]:
    """R-precision of ``image_embeds[i]`` (e.g. of an image generated from caption i) against ``text_embeds[i]``.

    Args:
        image_embeds / text_embeds: ``(N, D)``, row i of each a pair.
        num_candidates: captions ranked per image: the true one and ``num_candidates - 1`` others drawn without
            replacement from the other rows (AttnGAN: 100); needs ``N >= num_candidates``.
        top_k: report the percent of images whose true caption ranks within each k.
        seed: the draw of the mismatched captions.
        cosine: rank by the cosine (AttnGAN); False ranks by the dot product (e.g. a judge's log-likelihood of each
            caption, :func:`mmquant.metrics.judged.judge_r_precision`).
    Ties count against the model: the rank is 1 + the number of mismatched captions scoring at least as high.
    """
    _check("image_embeds", image_embeds)
    _check("text_embeds", text_embeds)
    if image_embeds.shape != text_embeds.shape:
        raise ValueError(
            f"image_embeds {tuple(image_embeds.shape)} and text_embeds {tuple(text_embeds.shape)}: expected the same "
            "shape, row i of each a pair."
        )
    n = len(image_embeds)
    if not isinstance(num_candidates, int) or not 2 <= num_candidates <= n:
        raise ValueError(f"num_candidates={num_candidates!r}: expected an integer in [2, N={n}].")
    if not top_k or any(not isinstance(k, int) or not 1 <= k <= num_candidates for k in top_k):
        raise ValueError(f"top_k={tuple(top_k)!r}: expected integers in [1, num_candidates={num_candidates}].")
    g = torch.Generator().manual_seed(seed)
    others = torch.rand(n, n, generator=g).fill_diagonal_(2.0).argsort(1)[:, : num_candidates - 1]  # (N, C - 1)
    v, t = image_embeds.double(), text_embeds.double()
    if cosine:
        v, t = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
    true = (v * t).sum(-1)  # (N,)
    wrong = torch.einsum("nd,ncd->nc", v, t[others])  # (N, C - 1)
    ranks = 1 + (wrong >= true[:, None]).sum(1)  # (N,)
    return {f"r_precision@{k}": 100.0 * float((ranks <= k).double().mean()) for k in top_k}


def aimcos(image_embeds: Tensor, attribute_embeds: Tensor, attributes: Sequence[Sequence[int]]) -> float:
    """Eq. 17: ``mean_i mean_{a in attributes[i]} cos(image_embeds[i], attribute_embeds[a])``.

    Args:
        image_embeds: ``(N, D)`` global image features.
        attribute_embeds: ``(A, D)`` text features of every attribute (e.g. the sentence feature of the one-word
            caption "red").
        attributes: for each image, the indices of the attributes present in it (at least one each).
    """
    _check("image_embeds", image_embeds)
    _check("attribute_embeds", attribute_embeds)
    if image_embeds.shape[1] != attribute_embeds.shape[1]:
        raise ValueError(
            f"image_embeds dim {image_embeds.shape[1]} and attribute_embeds dim {attribute_embeds.shape[1]}: "
            "expected the same feature size."
        )
    if len(attributes) != len(image_embeds):
        raise ValueError(f"attributes: {len(attributes)} lists for {len(image_embeds)} images; expected one each.")
    cos = F.normalize(image_embeds.double(), dim=-1) @ F.normalize(attribute_embeds.double(), dim=-1).T  # (N, A)
    per_image = []
    for i, present in enumerate(attributes):
        idx = list(present)
        if not idx or any(not 0 <= a < len(attribute_embeds) for a in idx):
            raise ValueError(f"attributes[{i}]={idx!r}: expected at least one index in [0, {len(attribute_embeds)}).")
        per_image.append(cos[i, idx].mean())
    return float(torch.stack(per_image).mean())
