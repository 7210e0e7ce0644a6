"""Metric functions against independent computations on known values, and their evaluate modules offline."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmquant.metrics.functional import codebook_usage, psnr, ssim

METRICS = Path(__file__).resolve().parents[2] / "src" / "mmquant" / "metrics"


def test_psnr_known_values():
    ref = torch.zeros(2, 1, 8, 8)
    pred = ref.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :4] += 0.5  # half the pixels off by 0.5: MSE 0.125 -> 10 log10(8) dB
    per_image = psnr(pred, ref, reduction="none")
    assert per_image[0].item() == pytest.approx(20.0, abs=1e-4)
    assert per_image[1].item() == pytest.approx(10 * math.log10(8), abs=1e-4)
    assert psnr(pred, ref).item() == pytest.approx(per_image.mean().item())
    assert psnr(pred * 255, ref * 255, data_range=255).item() == pytest.approx(psnr(pred, ref).item(), abs=1e-4)


def test_psnr_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 3, 10, 12)), rng.random((3, 3, 10, 12))
    expected = np.mean([10 * np.log10(1 / np.mean((x - y) ** 2)) for x, y in zip(a, b)])
    assert psnr(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(expected, rel=1e-6)


def _ssim_numpy(x, y, data_range=1.0, win=11, sigma=1.5):
    """Straightforward SSIM: explicit 2-D Gaussian window slid over every valid position."""
    c = np.arange(win) - (win - 1) / 2
    g = np.exp(-(c**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            px, py = x[i : i + win, j : j + win], y[i : i + win, j : j + win]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
            cov = (w * px * py).sum() - mx * my
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_an_independent_implementation():
    rng = np.random.default_rng(1)
    x = rng.random((16, 18))
    y = np.clip(x + 0.2 * rng.standard_normal((16, 18)), 0, 1)
    expected = _ssim_numpy(x, y)
    assert ssim(torch.tensor(y)[None], torch.tensor(x)[None]).item() == pytest.approx(expected, abs=1e-6)
    try:  # and scikit-image's, where it is installed
        from skimage.metrics import structural_similarity
    except ImportError:
        return
    sk = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    # skimage averages over the whole image after cropping (win-1)/2 pixels: the same valid region
    assert ssim(torch.tensor(x)[None], torch.tensor(y)[None]).item() == pytest.approx(sk, abs=1e-4)


def test_ssim_properties():
    x = torch.rand(3, 2, 16, 16)
    assert ssim(x, x).item() == pytest.approx(1.0)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(x, y).item() == pytest.approx(ssim(y, x).item(), abs=1e-6)
    assert -1 <= ssim(x, torch.rand_like(x)).item() < ssim(x, y).item() < 1


def test_codebook_usage_known_values():
    out = codebook_usage(torch.tensor([[0, 1], [1, 3]]), codebook_size=4)
    assert out == {"usage": 0.75, "perplexity": pytest.approx(2**1.5), "dead_codes": 1, "num_tokens": 4}
    uniform = codebook_usage(torch.arange(8).repeat(5), codebook_size=8)
    assert uniform["usage"] == 1.0 and uniform["perplexity"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: psnr(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5)), "same shape"),
        (lambda: psnr(torch.rand(4, 4), torch.rand(4, 4)), "predictions"),
        (lambda: psnr(torch.zeros(2, 1, 4, 4, dtype=torch.long), torch.zeros(2, 1, 4, 4)), "floating-point"),
        (lambda: psnr(torch.full((1, 1, 4, 4), float("nan")), torch.zeros(1, 1, 4, 4)), "NaN"),
        (lambda: psnr(torch.rand(0, 1, 4, 4), torch.rand(0, 1, 4, 4)), "empty"),
        (lambda: psnr(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4), data_range=0), "data_range"),
        (lambda: ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)), "win_size"),
        (lambda: codebook_usage(torch.tensor([0, 4]), 4), r"\[0, 4\)"),
        (lambda: codebook_usage(torch.tensor([-1]), 4), r"\[0, 4\)"),
        (lambda: codebook_usage(torch.tensor([0.5]), 4), "integer"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_evaluate_modules_load_offline_and_agree(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    m = evaluate.load(str(METRICS / "psnr"))
    assert m.compute(predictions=x.tolist(), references=y.tolist())["psnr"] == pytest.approx(psnr(x, y).item(), 1e-5)
    m = evaluate.load(str(METRICS / "ssim"))
    assert m.compute(predictions=x.tolist(), references=y.tolist())["ssim"] == pytest.approx(ssim(x, y).item(), 1e-5)
    m = evaluate.load(str(METRICS / "codebook_usage"))
    assert m.compute(predictions=[[0, 1], [1, 3]], codebook_size=4)["usage"] == 0.75
    with pytest.raises(ValueError, match="codebook_size"):
        m.compute(predictions=[[0, 1]])
