"""R-precision and AIMCoS on hand-made embeddings with known answers, against a brute-force count, and as evaluate
modules."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmquant.metrics.alignment import aimcos, r_precision

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "src" / "mmquant" / "metrics"


def test_r_precision_known_answers():
    eye = torch.eye(5)
    assert r_precision(eye, eye, num_candidates=5, top_k=(1,)) == {"r_precision@1": 100.0}
    # every caption the same: ties count against the model, so the true caption is never top-1
    same = torch.ones(5, 3)
    assert r_precision(same, same, num_candidates=3, top_k=(1, 3)) == {"r_precision@1": 0.0, "r_precision@3": 100.0}
    # images pointing away from their captions rank them last
    assert r_precision(eye, -eye + 0.1, num_candidates=5, top_k=(1, 4, 5)) == {
        "r_precision@1": 0.0,
        "r_precision@4": 0.0,
        "r_precision@5": 100.0,
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_r_precision_equals_a_brute_force_count_over_the_same_draw(seed):
    g = torch.Generator().manual_seed(seed)
    images, texts = torch.randn(30, 4, generator=g), torch.randn(30, 4, generator=g)
    got = r_precision(images, texts, num_candidates=10, top_k=(1, 3), seed=seed)
    draw = torch.Generator().manual_seed(seed)
    others = torch.rand(30, 30, generator=draw).fill_diagonal_(2.0).argsort(1)[:, :9]
    hits1 = hits3 = 0
    for i in range(30):
        assert i not in others[i].tolist() and len(set(others[i].tolist())) == 9
        true = F.cosine_similarity(images[i], texts[i], dim=0)
        better = sum(int(F.cosine_similarity(images[i], texts[j], dim=0) >= true) for j in others[i].tolist())
        hits1 += better < 1
        hits3 += better < 3
    assert got == pytest.approx({"r_precision@1": 100 * hits1 / 30, "r_precision@3": 100 * hits3 / 30})


def test_aimcos_known_answers():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    attributes = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    assert aimcos(images, attributes, [[0], [0, 1]]) == pytest.approx((1.0 + 0.5) / 2)
    assert aimcos(images, attributes, [[2], [1]]) == pytest.approx(0.0)
    assert aimcos(images, attributes, [[0, 2], [1]]) == pytest.approx((0.0 + 1.0) / 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: r_precision(torch.randn(5, 2), torch.randn(4, 2)), "same shape"),
        (lambda: r_precision(torch.randn(5, 2), torch.randn(5, 2), num_candidates=6), "num_candidates"),
        (lambda: r_precision(torch.randn(5, 2), torch.randn(5, 2), num_candidates=3, top_k=(4,)), "top_k"),
        (lambda: r_precision(torch.full((5, 2), float("nan")), torch.randn(5, 2), num_candidates=3), "NaN"),
        (lambda: r_precision(torch.randn(0, 2), torch.randn(0, 2)), "non-empty"),
        (lambda: aimcos(torch.randn(2, 2), torch.randn(3, 2), [[0]]), "one each"),
        (lambda: aimcos(torch.randn(2, 2), torch.randn(3, 2), [[0], []]), "at least one"),
        (lambda: aimcos(torch.randn(2, 2), torch.randn(3, 2), [[0], [3]]), r"\[0, 3\)"),
        (lambda: aimcos(torch.randn(2, 2), torch.randn(3, 4), [[0], [1]]), "feature size"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_evaluate_modules_equal_the_pure_functions(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    g = torch.Generator().manual_seed(2)
    images, texts = torch.randn(12, 3, generator=g), torch.randn(12, 3, generator=g)
    metric = evaluate.load(str(METRICS / "r_precision"), keep_in_memory=True)
    got = metric.compute(predictions=images.tolist(), references=texts.tolist(), num_candidates=5, seed=4)
    assert got == pytest.approx(r_precision(images, texts, num_candidates=5, seed=4), abs=1e-6)
    metric = evaluate.load(str(METRICS / "aimcos"), keep_in_memory=True)
    present = [[i % 3, (i + 1) % 3] for i in range(12)]
    got = metric.compute(predictions=images.tolist(), references=present, attribute_embeds=texts[:3].tolist())
    assert got["aimcos"] == pytest.approx(aimcos(images, texts[:3], present), abs=1e-6)
    with pytest.raises(ValueError, match="attribute_embeds"):
        metric.compute(predictions=images.tolist(), references=present)


@pytest.mark.parametrize("name", ["r_precision", "aimcos"])
def test_metric_card_example_runs(monkeypatch, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(METRICS / name / "README.md"), module_relative=False)
    assert result.failed == 0 and result.attempted > 0
