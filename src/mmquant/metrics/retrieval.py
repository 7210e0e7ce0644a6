"""Cross-modal retrieval metrics (pure torch): ranks of the relevant gallery items, Recall@K and median rank, as in
VSE++ (Faghri et al., "VSE++: Improving Visual-Semantic Embeddings with Hard Negatives", BMVC 2018) and jWAE
(Mahajan et al., ICCV Workshops 2019; reference evaluation github.com/visinf/jwae ``evaluation.py`` ``i2t``/``t2i``,
the COCO/Flickr30k five-captions-per-image protocol).

Ties count against the model: a query's rank is the number of non-relevant gallery items scoring at least as high as
its best relevant item, so a constant embedding ranks last instead of getting a free Recall@1.

The ``recall_at_k`` folder beside this file wraps :func:`ranks_from_scores` and :func:`recall_at_k` as an evaluate
module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cross_modal_retrieval", "rank_gallery", "ranks_from_scores", "recall_at_k", "retrieval_ranks"]


def _check_embeddings(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D float tensor (items, dim), got "
            f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}."
        )
    if len(x) == 0:
        raise ValueError(f"{name}: expected at least one row, got an empty tensor.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or Inf.")


def _check_pair(queries: Tensor, gallery: Tensor, batch_size: int) -> None:
    _check_embeddings("query_embeds", queries)
    _check_embeddings("gallery_embeds", gallery)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query_embeds dim {queries.shape[1]} and gallery_embeds dim {gallery.shape[1]}: expected the same "
            "embedding size."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer.")


def _positive_mask(positives, num_queries: int, gallery_size: int) -> Tensor:
    """``positives`` (a (Q,) tensor, a (Q, P) tensor padded with -1, or a list of index lists) as a (Q, G) mask."""
    if isinstance(positives, Tensor):
        if positives.dtype not in (torch.int64, torch.int32) or positives.ndim not in (1, 2):
            raise ValueError(
                f"positives: expected integer indices of shape (queries,) or (queries, P), got {positives.dtype} of "
                f"shape {tuple(positives.shape)}."
            )
        rows = positives.long()[:, None] if positives.ndim == 1 else positives.long()
        if len(rows) != num_queries:
            raise ValueError(f"positives: {len(rows)} rows for {num_queries} queries; expected one row per query.")
        valid = rows >= 0
        if positives.ndim == 1 and not valid.all():
            raise ValueError(f"positives: negative index {int(rows.min())}; expected gallery indices >= 0.")
        if (rows < -1).any():
            raise ValueError(f"positives: index {int(rows.min())}; expected gallery indices, -1 only as padding.")
        if (rows >= gallery_size).any():
            raise ValueError(f"positives: index {int(rows.max())} out of range for a gallery of {gallery_size}.")
    else:
        lists = list(positives)
        if len(lists) != num_queries:
            raise ValueError(f"positives: {len(lists)} entries for {num_queries} queries; expected one per query.")
        width = max((len(p) for p in lists), default=0)
        rows = torch.full((num_queries, max(width, 1)), -1, dtype=torch.long)
        for q, items in enumerate(lists):
            for j, item in enumerate(items):
                if isinstance(item, bool) or not 0 <= int(item) < gallery_size or int(item) != item:
                    raise ValueError(f"positives[{q}]: index {item!r} is not a gallery index in [0, {gallery_size}).")
                rows[q, j] = int(item)
        valid = rows >= 0
    if not valid.any(1).all():
        q = int((~valid.any(1)).nonzero()[0])
        raise ValueError(f"positives[{q}]: query {q} has no relevant gallery item; give at least one per query.")
    mask = torch.zeros(num_queries, gallery_size, dtype=torch.bool)
    query_index = torch.arange(num_queries)[:, None].expand_as(rows)
    mask[query_index[valid], rows[valid]] = True
    return mask


def ranks_from_scores(scores: Tensor, positive_mask: Tensor) -> Tensor:
    """0-based rank of each row's best relevant item: the number of non-relevant items scoring >= it. ``scores``
    and ``positive_mask`` are ``(Q, G)``; every row needs one relevant item."""
    if scores.shape != positive_mask.shape or scores.ndim != 2:
        raise ValueError(
            f"scores {tuple(scores.shape)} and positive mask {tuple(positive_mask.shape)}: expected the same (Q, G)."
        )
    if not torch.isfinite(scores).all():
        raise ValueError("scores: contains NaN or Inf.")
    if not positive_mask.any(1).all():
        raise ValueError("positives: every query needs at least one relevant gallery item.")
    best = scores.masked_fill(~positive_mask, float("-inf")).max(1, keepdim=True).values  # (Q, 1)
    return ((scores >= best) & ~positive_mask).sum(1)  # (Q,)


def retrieval_ranks(
    query_embeds: Tensor, gallery_embeds: Tensor, positives, *, batch_size: int = 1024, normalize: bool = True
) -> Tensor:
    """0-based rank ``(Q,)`` of each query's best relevant gallery item by cosine similarity (dot product when
    ``normalize=False``), computing one ``(batch_size, G)`` block of scores at a time."""
    _check_pair(query_embeds, gallery_embeds, batch_size)
    mask = _positive_mask(positives, len(query_embeds), len(gallery_embeds))
    if normalize:
        query_embeds, gallery_embeds = F.normalize(query_embeds, dim=-1), F.normalize(gallery_embeds, dim=-1)
    ranks = []
    for start in range(0, len(query_embeds), batch_size):
        block = query_embeds[start : start + batch_size] @ gallery_embeds.T  # (b, G)
        ranks.append(ranks_from_scores(block, mask[start : start + batch_size].to(block.device)))
    return torch.cat(ranks).cpu()


def rank_gallery(
    query_embeds: Tensor, gallery_embeds: Tensor, *, top_k: int = 10, batch_size: int = 1024, normalize: bool = True
) -> tuple[Tensor, Tensor]:
    """The ``top_k`` gallery items of each query, best first: scores and indices ``(Q, top_k)``, one
    ``(batch_size, G)`` block of scores at a time. ``top_k`` larger than the gallery is an error."""
    _check_pair(query_embeds, gallery_embeds, batch_size)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= len(gallery_embeds):
        raise ValueError(f"top_k={top_k!r}: expected an integer from 1 to the gallery size {len(gallery_embeds)}.")
    if normalize:
        query_embeds, gallery_embeds = F.normalize(query_embeds, dim=-1), F.normalize(gallery_embeds, dim=-1)
    scores, indices = [], []
    for start in range(0, len(query_embeds), batch_size):
        best = (query_embeds[start : start + batch_size] @ gallery_embeds.T).topk(top_k, dim=1)
        scores.append(best.values)
        indices.append(best.indices)
    return torch.cat(scores), torch.cat(indices)


def recall_at_k(ranks: Tensor, k_values=(1, 5, 10)) -> dict[str, float]:
    """``recall@k`` (percent of queries ranked below k), ``median_rank`` and ``mean_rank`` (1-based; the median as
    the reference's ``floor(median(ranks)) + 1``) of 0-based ``ranks``."""
    ranks = torch.as_tensor(ranks)
    if ranks.ndim != 1 or len(ranks) == 0 or ranks.is_floating_point() or (ranks < 0).any():
        raise ValueError(f"ranks: expected a non-empty 1-D tensor of 0-based integer ranks, got {ranks!r:.80}.")
    if not k_values or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in k_values):
        raise ValueError(f"k_values={k_values!r}: expected positive integers, e.g. (1, 5, 10).")
    result = {f"recall@{k}": 100.0 * float((ranks < k).double().mean()) for k in k_values}
    result["median_rank"] = float(torch.quantile(ranks.double(), 0.5).floor()) + 1.0
    result["mean_rank"] = float(ranks.double().mean()) + 1.0
    return result


def cross_modal_retrieval(
    image_embeds: Tensor,
    text_embeds: Tensor,
    text_to_image: Tensor,
    *,
    k_values=(1, 5, 10),
    batch_size: int = 1024,
    normalize: bool = True,
) -> dict[str, float]:
    """Image->text (``i2t_``: every caption of the image is relevant) and text->image (``t2i_``: its image) Recall@K,
    median and mean rank, and ``rsum``, the sum of the recalls (as VSE++ and SCAN report)."""
    _check_embeddings("image_embeds", image_embeds)
    _check_embeddings("text_embeds", text_embeds)
    if not isinstance(text_to_image, Tensor) or text_to_image.ndim != 1 or len(text_to_image) != len(text_embeds):
        raise ValueError(
            f"text_to_image: expected a 1-D tensor with one image index per caption ({len(text_embeds)}), got "
            f"{tuple(getattr(text_to_image, 'shape', ()))}."
        )
    if text_to_image.is_floating_point() or text_to_image.min() < 0 or text_to_image.max() >= len(image_embeds):
        raise ValueError(f"text_to_image: expected integer indices into the {len(image_embeds)} images.")
    owners = text_to_image.long().cpu()
    captions_of = [[] for _ in range(len(image_embeds))]
    for caption, image in enumerate(owners.tolist()):
        captions_of[image].append(caption)
    missing = [i for i, c in enumerate(captions_of) if not c]
    if missing:
        raise ValueError(f"text_to_image: image {missing[0]} has no caption; every gallery image needs one.")
    args = dict(batch_size=batch_size, normalize=normalize)
    i2t = recall_at_k(retrieval_ranks(image_embeds, text_embeds, captions_of, **args), k_values)
    t2i = recall_at_k(retrieval_ranks(text_embeds, image_embeds, owners, **args), k_values)
    result = {f"i2t_{k}": v for k, v in i2t.items()} | {f"t2i_{k}": v for k, v in t2i.items()}
    result["rsum"] = sum(v for k, v in result.items() if "recall@" in k)
    return result
