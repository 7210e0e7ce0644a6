"""Caption MNIST and Degree builders: captions parse back into the stored ground truth, the pixels hold the right
digit in the right colour and quadrant, splits come from disjoint MNIST splits, and builds are deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mmquant.data.builders import build_dataset, load_builder
from mmquant.data.caption_grammar import CENTER, QUADRANTS, parse_caption
from mmquant.data.caption_mnist import COLORS, DEFAULT_COLORS
from mmquant.data.mnist import load_mnist

SIZES = {"train": 40, "validation": 10, "test": 30}
BASE_CONFIGS = {"single": 1, "quad1": 1, "quad2": 2, "quad3": 3, "quad4": 4}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("caption_mnist_cache")


@pytest.fixture(scope="module")
def mnist():
    return {split: load_mnist(split)[0].numpy() for split in ("train", "validation", "test")}


def _build(cache, config, **kwargs):
    kwargs.setdefault("num_examples", SIZES if not config.endswith("degree") else {"test": 12})
    return build_dataset("caption_mnist", config, cache_dir=cache, **kwargs)


def _described(objects) -> list[tuple]:
    return [(o["position"], o["digit"], o["color"]) for o in objects]


@pytest.mark.parametrize("config", list(BASE_CONFIGS))
def test_captions_parse_to_ground_truth_and_pixels_match(cache, mnist, config):
    ds = _build(cache, config)
    assert {split: len(d) for split, d in ds.items()} == SIZES
    k = BASE_CONFIGS[config]
    for split, dataset in ds.items():
        for row in dataset:
            objects = row["objects"]
            assert len(objects) == k and row["mnist_split"] == split
            parsed = parse_caption(row["caption"], DEFAULT_COLORS)
            assert [(o.position, o.digit, o.color) for o in parsed] == _described(objects)
            image = np.asarray(row["image"])
            assert image.shape == (64, 64, 3) and image.dtype == np.uint8
            occupied = set()
            for obj in objects:
                digit = mnist[split][obj["mnist_index"]]
                tint = np.asarray(COLORS[obj["color"]])
                if obj["position"] == CENTER:
                    assert config == "single"
                    crop = image[4:60, 4:60]
                    assert (crop[..., tint == 0] == 0).all()  # only the colour's own channels are lit
                    lit = crop[..., tint > 0].max(-1)
                    assert lit.max() > 100
                    continue
                row_i, col_i = divmod(QUADRANTS.index(obj["position"]), 2)
                quadrant = image[row_i * 32 : row_i * 32 + 32, col_i * 32 : col_i * 32 + 32]
                occupied.add(obj["position"])
                crop = quadrant[2:30, 2:30]
                for channel in range(3):  # the pixels are exactly the MNIST digit, in this colour
                    expected = digit if tint[channel] else np.zeros_like(digit)
                    np.testing.assert_array_equal(crop[..., channel], expected)
            if config != "single":
                for position in set(QUADRANTS) - occupied:  # empty quadrants are black
                    row_i, col_i = divmod(QUADRANTS.index(position), 2)
                    assert image[row_i * 32 : row_i * 32 + 32, col_i * 32 : col_i * 32 + 32].max() == 0


@pytest.mark.parametrize("config", ["single", "quad3"])
def test_digits_are_labelled_truthfully(cache, config):
    ds = _build(cache, config)
    for split, dataset in ds.items():
        labels = load_mnist(split)[1].numpy()
        for row in dataset:
            for obj in row["objects"]:
                assert labels[obj["mnist_index"]] == obj["digit"]


def test_splits_do_not_share_mnist_images(cache, mnist):
    ds = _build(cache, "quad4")
    seen = {}
    for split, dataset in ds.items():
        digests = set()
        for row in dataset:
            for obj in row["objects"]:
                digests.add(hashlib.sha1(mnist[split][obj["mnist_index"]].tobytes()).hexdigest())
        seen[split] = digests
    assert not seen["train"] & seen["test"]
    assert not seen["train"] & seen["validation"]
    assert not seen["validation"] & seen["test"]


def test_same_seed_same_dataset_other_seed_differs(tmp_path):
    kwargs = {"num_examples": {"test": 16}}
    a = build_dataset("caption_mnist", "quad2", cache_dir=tmp_path / "a", **kwargs)["test"]
    b = build_dataset("caption_mnist", "quad2", cache_dir=tmp_path / "b", **kwargs)["test"]
    c = build_dataset("caption_mnist", "quad2", cache_dir=tmp_path / "c", seed=1, **kwargs)["test"]
    assert a["caption"][:] == b["caption"][:]
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a["image"], b["image"]))
    assert a["caption"][:] != c["caption"][:]


def test_first_examples_do_not_depend_on_split_size(cache):
    small = _build(cache, "quad2", num_examples={"test": 5})["test"]
    large = _build(cache, "quad2")["test"]
    assert small["caption"][:] == large["caption"][:5]


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_degree_rows(cache, k):
    degree = _build(cache, f"quad{k}_degree")["test"]
    base = _build(cache, f"quad{k}")["test"]
    assert len(degree) == 12 * (k + 1)
    for i, row in enumerate(degree):
        base_row = base[i // (k + 1)]
        assert row["degree"] == k - i % (k + 1) and row["num_objects"] == k
        assert row["original_caption"] == base_row["caption"]  # the very QuadK pair of the same seed and index
        assert row["objects"] == base_row["objects"]
        assert np.array_equal(np.asarray(row["image"]), np.asarray(base_row["image"]))
        described = parse_caption(row["caption"], DEFAULT_COLORS)
        assert [(o.position, o.digit, o.color) for o in described] == _described(row["caption_objects"])
        assert sum(row["changed"]) == k - row["degree"]
        for truth, said, changed in zip(row["objects"], row["caption_objects"], row["changed"]):
            assert truth["position"] == said["position"]
            if changed:  # both colour and digit differ
                assert truth["digit"] != said["digit"] and truth["color"] != said["color"]
            else:
                assert (truth["digit"], truth["color"]) == (said["digit"], said["color"])
        if row["degree"] == k:
            assert row["caption"] == row["original_caption"]


def test_config_fields_can_be_overridden(cache):
    ds = _build(cache, "quad1", image_size=32, colors=("red", "yellow", "cyan"), num_examples={"validation": 6})
    row = ds["validation"][0]
    assert np.asarray(row["image"]).shape == (32, 32, 3)
    assert {o["color"] for r in ds["validation"] for o in r["objects"]} <= {"red", "yellow", "cyan"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config_name": "quad5"}, "config_name='quad5'"),
        ({"config_name": "quad1", "num_examples": {"dev": 3}}, "num_examples"),
        ({"config_name": "quad1", "colors": ("red", "purple")}, "colors="),
        ({"config_name": "quad1", "image_size": 30, "num_examples": {"test": 1}}, "image_size=30"),
    ],
)
def test_bad_configs_name_the_argument(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder = load_builder("caption_mnist", cache_dir=tmp_path, **kwargs)
        builder.download_and_prepare()


def test_unknown_builder_lists_the_available_ones():
    with pytest.raises(ValueError, match="caption_mnist"):
        load_builder("caption_mnsit")
