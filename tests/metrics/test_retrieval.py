"""Retrieval metrics: ranks and Recall@K against a brute-force loop on random embeddings (one and several relevant
items per query, every batch size), pessimistic ties, hand-made cases with known answers, the evaluate module equal
to the pure functions, its card's example, and clear errors on bad inputs."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmquant.metrics.retrieval import cross_modal_retrieval, rank_gallery, recall_at_k, retrieval_ranks

ROOT = Path(__file__).resolve().parents[2]
METRIC = ROOT / "src" / "mmquant" / "metrics" / "recall_at_k"


def _brute_ranks(queries, gallery, positives):
    """Rank of the best relevant item by an explicit double loop over Python floats."""
    q, g = F.normalize(queries.double(), dim=-1), F.normalize(gallery.double(), dim=-1)
    ranks = []
    for i in range(len(q)):
        scores = [float(q[i] @ g[j]) for j in range(len(g))]
        best = max(scores[j] for j in positives[i])
        ranks.append(sum(1 for j in range(len(g)) if j not in positives[i] and scores[j] >= best))
    return ranks


def _brute_recall(ranks, k_values=(1, 5, 10)):
    n = len(ranks)
    out = {f"recall@{k}": 100.0 * sum(r < k for r in ranks) / n for k in k_values}
    s = sorted(ranks)
    median = (s[(n - 1) // 2] + s[n // 2]) / 2
    out["median_rank"] = math.floor(median) + 1
    out["mean_rank"] = sum(ranks) / n + 1
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_ranks_match_brute_force_one_positive(seed, batch_size):
    g = torch.Generator().manual_seed(seed)
    queries, gallery = torch.randn(23, 6, generator=g), torch.randn(31, 6, generator=g)
    positives = torch.randint(0, 31, (23,), generator=g)
    ranks = retrieval_ranks(queries, gallery, positives, batch_size=batch_size)
    assert ranks.tolist() == _brute_ranks(queries, gallery, [[int(p)] for p in positives])


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_five_caption_protocol_matches_brute_force(batch_size):
    g = torch.Generator().manual_seed(3)
    images = torch.randn(12, 8, generator=g)
    owners = torch.arange(12).repeat_interleave(5)
    captions = images[owners] + 1.5 * torch.randn(60, 8, generator=g)  # noisy copies: non-trivial ranks
    got = cross_modal_retrieval(images, captions, owners, batch_size=batch_size)
    i2t = _brute_recall(_brute_ranks(images, captions, [list(range(5 * i, 5 * i + 5)) for i in range(12)]))
    t2i = _brute_recall(_brute_ranks(captions, images, [[int(o)] for o in owners]))
    expected = {f"i2t_{k}": v for k, v in i2t.items()} | {f"t2i_{k}": v for k, v in t2i.items()}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert got["rsum"] == pytest.approx(sum(v for k, v in expected.items() if "recall" in k))
    # the padded-tensor and list forms of several positives agree
    padded = torch.arange(60).view(12, 5)
    padded[0, 3:] = -1
    as_lists = [list(range(5 * i, 5 * i + 5)) for i in range(12)]
    as_lists[0] = [0, 1, 2]
    assert torch.equal(retrieval_ranks(images, captions, padded), retrieval_ranks(images, captions, as_lists))


def test_ties_count_against_the_model():
    constant = torch.ones(4, 3)
    assert retrieval_ranks(constant, constant, torch.arange(4)).tolist() == [3, 3, 3, 3]
    scores = cross_modal_retrieval(constant, constant, torch.arange(4), k_values=(1, 4))
    assert scores["i2t_recall@1"] == 0.0 and scores["i2t_recall@4"] == 100.0
    # hand-made: gallery directions e0, e1, e0 (a tie with the relevant e0), query e0 relevant to item 0
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    assert retrieval_ranks(torch.tensor([[1.0, 0.0]]), gallery, torch.tensor([0])).tolist() == [1]
    # ... but only non-relevant items count: with both e0 items relevant the rank is 0
    assert retrieval_ranks(torch.tensor([[1.0, 0.0]]), gallery, [[0, 2]]).tolist() == [0]


def test_recall_and_ranks_on_known_values():
    got = recall_at_k(torch.tensor([0, 0, 3, 7, 12, 40]), k_values=(1, 5, 10))
    assert got == {
        "recall@1": pytest.approx(100 * 2 / 6),
        "recall@5": pytest.approx(100 * 3 / 6),
        "recall@10": pytest.approx(100 * 4 / 6),
        "median_rank": 6.0,  # median of 0-based ranks = 5, floor + 1
        "mean_rank": pytest.approx(62 / 6 + 1),
    }


def test_normalize_false_uses_the_dot_product():
    queries = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [3.0, 3.0]])  # cosine prefers item 0, the dot product item 1
    assert retrieval_ranks(queries, gallery, torch.tensor([0])).tolist() == [0]
    assert retrieval_ranks(queries, gallery, torch.tensor([0]), normalize=False).tolist() == [1]


@pytest.mark.parametrize("batch_size", [1, 5, 100])
def test_rank_gallery_equals_topk_of_the_full_matrix(batch_size):
    g = torch.Generator().manual_seed(4)
    queries, gallery = torch.randn(9, 5, generator=g), torch.randn(40, 5, generator=g)
    scores, indices = rank_gallery(queries, gallery, top_k=6, batch_size=batch_size)
    full = (F.normalize(queries, dim=-1) @ F.normalize(gallery, dim=-1).T).topk(6, dim=1)
    assert torch.equal(indices, full.indices) and torch.allclose(scores, full.values)


def test_evaluate_module_equals_the_pure_functions(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(METRIC), keep_in_memory=True)
    g = torch.Generator().manual_seed(5)
    images = torch.randn(10, 4, generator=g)
    owners = torch.arange(10).repeat_interleave(2)
    captions = images[owners] + torch.randn(20, 4, generator=g)
    scores = F.normalize(images, dim=-1) @ F.normalize(captions, dim=-1).T
    references = [[2 * i, 2 * i + 1] for i in range(10)]
    got = metric.compute(predictions=scores.tolist(), references=references, k_values=[1, 3])
    expected = recall_at_k(retrieval_ranks(images, captions, references), k_values=(1, 3))
    assert got == pytest.approx(expected)
    with pytest.raises(ValueError, match="references"):
        metric.compute(predictions=[[0.1, 0.2]], references=[[5]])


def test_metric_card_example_runs(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(METRIC / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: retrieval_ranks(torch.randn(3), torch.randn(4, 2), torch.tensor([0, 1, 2])), "query_embeds"),
        (lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 3), torch.tensor([0, 1, 2])), "same embedding"),
        (lambda: retrieval_ranks(torch.full((3, 2), float("nan")), torch.randn(4, 2), torch.tensor([0, 1, 2])), "NaN"),
        (lambda: retrieval_ranks(torch.randn(0, 2), torch.randn(4, 2), torch.tensor([], dtype=torch.long)), "empty"),
        (lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, 1, 4])), "out of range"),
        (lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, -1, 2])), "negative"),
        (lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 2), [[0], [], [1]]), "no relevant"),
        (lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, 1])), "one row per query"),
        (
            lambda: retrieval_ranks(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, 1, 2]), batch_size=0),
            "batch_size",
        ),
        (
            lambda: cross_modal_retrieval(torch.randn(3, 2), torch.randn(2, 2), torch.tensor([0, 1])),
            "image 2 has no caption",
        ),
        (
            lambda: cross_modal_retrieval(torch.randn(3, 2), torch.randn(2, 2), torch.tensor([0, 1, 2])),
            "text_to_image",
        ),
        (lambda: rank_gallery(torch.randn(3, 2), torch.randn(4, 2), top_k=5), "top_k"),
        (lambda: recall_at_k(torch.tensor([0, 1]), k_values=(0,)), "k_values"),
        (lambda: recall_at_k(torch.tensor([-1, 1])), "ranks"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
