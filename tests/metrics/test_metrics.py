"""Metric functions against independent computations on known values, and their evaluate modules offline."""

import doctest
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmquant.metrics.functional import codebook_usage, psnr, ssim

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "src" / "mmquant" / "metrics"
MODULES = ["psnr", "ssim", "codebook_usage"]


# ---------------------------------------------------------------- PSNR


def test_psnr_known_values():
    ref = torch.zeros(2, 1, 8, 8)
    pred = ref.clone()
    pred[0] += 0.1  # constant offset 0.1: MSE 0.01 -> 20 dB
    pred[1, :, :4] += 0.5  # half the pixels off by 0.5: MSE 0.125 -> 10 log10(8) dB
    per_image = psnr(pred, ref, reduction="none")
    assert per_image.shape == (2,)
    assert per_image[0].item() == pytest.approx(20.0, abs=1e-4)
    assert per_image[1].item() == pytest.approx(10 * math.log10(8), abs=1e-4)
    assert psnr(pred, ref).item() == pytest.approx(per_image.mean().item())
    # the same images in bytes
    assert psnr(pred * 255, ref * 255, data_range=255).item() == pytest.approx(psnr(pred, ref).item(), abs=1e-4)
    # [-1, 1] images: offset 0.2 over a range of 2 is again MSE/range^2 = 0.01
    assert psnr(torch.full((1, 3, 4, 4), 0.2), torch.zeros(1, 3, 4, 4), data_range=2.0).item() == pytest.approx(20.0)


def test_psnr_matches_numpy_and_accepts_grayscale():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 3, 10, 12)), rng.random((3, 3, 10, 12))
    expected = [10 * np.log10(1 / np.mean((x - y) ** 2)) for x, y in zip(a, b)]
    got = psnr(torch.tensor(a), torch.tensor(b), reduction="none")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert psnr(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(np.mean(expected), rel=1e-6)
    # (B, H, W) is (B, 1, H, W)
    x, y = torch.rand(2, 8, 8), torch.rand(2, 8, 8)
    assert psnr(x, y).item() == psnr(x[:, None], y[:, None]).item()


def test_psnr_identical_images_are_infinite():
    x = torch.rand(2, 1, 4, 4)
    y = x.clone()
    y[1] += 0.1
    per_image = psnr(x, y, reduction="none")
    assert per_image[0].item() == math.inf and math.isfinite(per_image[1].item())
    assert psnr(x, y).item() == math.inf
    assert per_image.clamp(max=100).mean().item() == pytest.approx((100 + 20) / 2, abs=1e-3)


# ---------------------------------------------------------------- SSIM


def _ssim_numpy(x, y, data_range=1.0, win=11, sigma=1.5):
    """Straightforward SSIM of one 2-D image: explicit 2-D Gaussian window slid over every valid position."""
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


def _noisy_pair(seed, shape, data_range):
    rng = np.random.default_rng(seed)
    x = rng.random(shape) * data_range
    y = np.clip(x + 0.15 * data_range * rng.standard_normal(shape), 0, data_range)
    return x, y


def test_ssim_matches_an_independent_implementation():
    x, y = _noisy_pair(0, (2, 16, 18), 1.0)
    expected = np.mean([_ssim_numpy(x[c], y[c]) for c in range(2)])  # per channel, then averaged
    assert ssim(torch.tensor(y)[None], torch.tensor(x)[None]).item() == pytest.approx(expected, abs=1e-6)
    x, y = _noisy_pair(1, (13, 12), 255.0)
    expected = _ssim_numpy(x, y, data_range=255.0, win=7, sigma=1.0)
    got = ssim(torch.tensor(x)[None], torch.tensor(y)[None], data_range=255.0, win_size=7, sigma=1.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)


# skimage.metrics.structural_similarity(x, y, data_range=dr, gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False, channel_axis=0) on _noisy_pair(seed, (c, h, w), dr), scikit-image 0.26.0.
SKIMAGE_VALUES = [
    (0, (1, 16, 18), 1.0, 0.8937083756421705),
    (1, (3, 24, 20), 1.0, 0.8924390575163437),
    (2, (2, 11, 13), 255.0, 0.9243580225607965),
]


@pytest.mark.parametrize("seed,shape,data_range,expected", SKIMAGE_VALUES)
def test_ssim_matches_stored_skimage_values(seed, shape, data_range, expected):
    x, y = _noisy_pair(seed, shape, data_range)
    got = ssim(torch.tensor(x)[None], torch.tensor(y)[None], data_range=data_range)
    assert got.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed,shape,data_range,expected", SKIMAGE_VALUES[:1])
def test_ssim_matches_skimage_where_installed(seed, shape, data_range, expected):
    skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image not installed")
    x, y = _noisy_pair(seed, shape, data_range)
    sk = skimage_metrics.structural_similarity(
        x, y, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0
    )
    assert sk == pytest.approx(expected, abs=1e-12)  # the stored value is still skimage's
    assert ssim(torch.tensor(x)[None], torch.tensor(y)[None], data_range=data_range).item() == pytest.approx(sk, 1e-6)


def test_ssim_properties():
    x = torch.rand(3, 2, 16, 16)
    assert torch.allclose(ssim(x, x, reduction="none"), torch.ones(3))
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(x, y).item() == pytest.approx(ssim(y, x).item(), abs=1e-6)  # symmetric
    assert -1 <= ssim(x, torch.rand_like(x)).item() < ssim(x, y).item() < 1  # more noise, lower SSIM
    assert ssim(x, 1 - x).item() < 0  # anti-correlated
    assert ssim(x * 255, y * 255, data_range=255).item() == pytest.approx(ssim(x, y).item(), abs=1e-5)
    per_image = ssim(x, y, reduction="none")
    assert per_image.shape == (3,) and ssim(x, y).item() == pytest.approx(per_image.mean().item())
    # per channel then averaged: a two-channel image scores the mean of its one-channel scores
    channels = [ssim(x[:, c : c + 1], y[:, c : c + 1], reduction="none") for c in range(2)]
    assert torch.allclose(per_image, (channels[0] + channels[1]) / 2, atol=1e-6)


# ---------------------------------------------------------------- codebook usage


def test_codebook_usage_known_values():
    out = codebook_usage(torch.tensor([[0, 1], [1, 3]]), codebook_size=4)
    # histogram (1, 2, 0, 1) / 4: entropy = 2 * (1/4) ln 4 + (1/2) ln 2 = 1.5 ln 2, perplexity 2^1.5
    assert out == {"usage": 0.75, "perplexity": pytest.approx(2**1.5), "dead_codes": 1, "num_tokens": 4}
    uniform = codebook_usage(torch.arange(8).repeat(5), codebook_size=8)
    assert uniform == {"usage": 1.0, "perplexity": pytest.approx(8.0), "dead_codes": 0, "num_tokens": 40}
    collapsed = codebook_usage(torch.full((2, 3, 3), 5, dtype=torch.int32), codebook_size=16)
    assert collapsed == {"usage": 1 / 16, "perplexity": pytest.approx(1.0), "dead_codes": 15, "num_tokens": 18}


def test_codebook_usage_matches_numpy():
    idx = torch.randint(0, 50, (7, 13))
    counts = np.bincount(idx.numpy().ravel(), minlength=64)
    p = counts[counts > 0] / counts.sum()
    out = codebook_usage(idx, codebook_size=64)
    assert out["usage"] == pytest.approx((counts > 0).mean())
    assert out["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)
    assert out["dead_codes"] == int((counts == 0).sum()) and out["num_tokens"] == 91


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: psnr(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5)), "predictions .* references .* same shape"),
        (lambda: psnr(torch.rand(4, 4), torch.rand(4, 4)), "predictions: expected .*height, width"),
        (lambda: psnr(torch.rand(1, 1, 1, 4, 4), torch.rand(1, 1, 1, 4, 4)), "predictions: expected"),
        (lambda: psnr(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4)), "predictions: .*floating"),
        (lambda: psnr(torch.zeros(1, 4, 4), [[[0.0]]]), "references: .*floating"),
        (lambda: psnr(torch.full((1, 4, 4), float("nan")), torch.zeros(1, 4, 4)), "predictions: .*NaN"),
        (lambda: psnr(torch.zeros(1, 4, 4), torch.full((1, 4, 4), float("inf"))), "references: .*NaN or Inf"),
        (lambda: psnr(torch.rand(0, 1, 4, 4), torch.rand(0, 1, 4, 4)), "predictions: .*empty"),
        (lambda: psnr(torch.rand(1, 4, 4), torch.rand(1, 4, 4), data_range=0), "data_range=0"),
        (lambda: psnr(torch.rand(1, 4, 4), torch.rand(1, 4, 4), data_range=-1.0), "data_range=-1.0"),
        (lambda: psnr(torch.rand(1, 4, 4), torch.rand(1, 4, 4), reduction="sum"), "reduction='sum'"),
        (lambda: ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)), "8x8 .* win_size=11"),
        (lambda: ssim(torch.rand(1, 16, 16), torch.rand(1, 16, 16), win_size=4), "win_size=4"),
        (lambda: ssim(torch.rand(1, 16, 16), torch.rand(1, 16, 16), sigma=0), "sigma=0"),
        (lambda: ssim(torch.rand(1, 16, 16), torch.rand(1, 17, 16)), "same shape"),
        (lambda: ssim(torch.rand(1, 16, 16), torch.rand(1, 16, 16), data_range=float("inf")), "data_range=inf"),
        (lambda: codebook_usage(torch.tensor([0, 4]), 4), r"indices: expected values in \[0, 4\)"),
        (lambda: codebook_usage(torch.tensor([-1]), 4), r"indices: .*min -1"),
        (lambda: codebook_usage(torch.tensor([0.5]), 4), "indices: expected an integer"),
        (lambda: codebook_usage([0, 1], 4), "indices: expected an integer tensor"),
        (lambda: codebook_usage(torch.tensor([], dtype=torch.long), 4), "indices: expected at least one"),
        (lambda: codebook_usage(torch.tensor([0]), 0), "codebook_size=0"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- evaluate modules


@pytest.fixture(scope="module")
def modules():
    import evaluate

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        # in memory: with evaluate 0.4.6 a compute that raises leaves its cache-file lock held, and the next
        # compute of the same object waits for it (~1 s)
        yield {name: evaluate.load(str(METRICS / name), keep_in_memory=True) for name in MODULES}


def test_metric_folders_are_not_packages():
    """The folders load by path in evaluate; without ``__init__.py`` ``pkgutil.walk_packages`` skips them."""
    import pkgutil

    import mmquant

    names = {m.name for m in pkgutil.walk_packages(mmquant.__path__, "mmquant.")}
    assert "mmquant.metrics.functional" in names
    for name in MODULES:
        assert (METRICS / name / f"{name}.py").is_file() and (METRICS / name / "README.md").is_file()
        assert not (METRICS / name / "__init__.py").exists()
        assert not any(n.startswith(f"mmquant.metrics.{name}") for n in names)


def test_evaluate_images_agree_with_functional(modules):
    x, y = torch.rand(3, 2, 16, 16), torch.rand(3, 2, 16, 16)
    got = modules["psnr"].compute(predictions=x.tolist(), references=y.tolist())
    assert got == {"psnr": pytest.approx(psnr(x, y).item(), rel=1e-6)}
    got = modules["ssim"].compute(predictions=x.tolist(), references=y.tolist())
    assert got == {"ssim": pytest.approx(ssim(x, y).item(), abs=1e-6)}
    # (height, width) images, keyword arguments, and batches added one by one
    g, h = x[:, 0] * 255, y[:, 0] * 255
    for i in range(3):
        modules["ssim"].add_batch(predictions=g[i : i + 1].tolist(), references=h[i : i + 1].tolist())
    got = modules["ssim"].compute(data_range=255.0, win_size=7, sigma=1.0, k1=0.02, k2=0.05)
    expected = ssim(g, h, data_range=255.0, win_size=7, sigma=1.0, k1=0.02, k2=0.05).item()
    assert got["ssim"] == pytest.approx(expected, abs=1e-6)
    got = modules["psnr"].compute(predictions=g.tolist(), references=h.tolist(), data_range=255)
    assert got["psnr"] == pytest.approx(psnr(g, h, data_range=255).item(), rel=1e-6)


def test_evaluate_codebook_usage_agrees_with_functional(modules):
    tokens = [[0, 1, 1], [3], [1, 7, 7, 7]]  # sequences of different lengths
    got = modules["codebook_usage"].compute(predictions=tokens, codebook_size=8)
    assert got == codebook_usage(torch.tensor([0, 1, 1, 3, 1, 7, 7, 7]), codebook_size=8)
    assert got["usage"] == 0.5 and got["num_tokens"] == 8


def test_evaluate_bad_inputs_name_the_argument(modules):
    with pytest.raises(ValueError, match="codebook_size: required"):
        modules["codebook_usage"].compute(predictions=[[0, 1]])
    with pytest.raises(ValueError, match=r"indices: expected values in \[0, 2\)"):
        modules["codebook_usage"].compute(predictions=[[0, 2]], codebook_size=2)
    ragged = [torch.rand(4, 4).tolist(), torch.rand(5, 5).tolist()]
    with pytest.raises(ValueError, match="predictions: expected images of one shape"):
        modules["psnr"].compute(predictions=ragged, references=ragged)
    with pytest.raises(ValueError, match="data_range=0"):
        modules["psnr"].compute(predictions=[[[0.5]]], references=[[[0.5]]], data_range=0)
    with pytest.raises(ValueError, match="win_size=11"):
        modules["ssim"].compute(predictions=torch.rand(1, 8, 8).tolist(), references=torch.rand(1, 8, 8).tolist())


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
    assert result.attempted > 0 and result.failed == 0
