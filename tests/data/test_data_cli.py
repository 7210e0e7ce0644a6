"""mmquant-data: build offline, export Parquet + generated card that datasets.load_dataset reads back; the committed
dataset cards are up to date with their builders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from mmquant.data.builders import build_dataset, dataset_scripts_dir
from mmquant.data.cli import main
from mmquant.data.export import parquet_export_sizes
from mmquant.hub.dataset_cards import check_dataset_card, render_dataset_card

ROOT = Path(__file__).resolve().parents[2]
CARD_DATA = sorted((ROOT / "src" / "mmquant" / "dataset_scripts").glob("*/card_data.yaml"))


def test_list_names_every_builder():
    out = subprocess.run(
        [sys.executable, "-m", "mmquant.data.cli", "list"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    for name in ("caption_mnist",):
        assert name in out
    assert "quad4_degree" in out


def test_build_export_and_load_back(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    for config, sizes in (("quad1", ["train=6", "test=4"]), ("quad1_degree", ["test=3"])):
        assert main(["build", "caption_mnist", "--config", config, "--num_examples", *sizes,
                     "--output", str(out), "--cache_dir", str(cache)]) == 0  # fmt: skip
    assert parquet_export_sizes(out) == {"quad1": {"train": 6, "test": 4}, "quad1_degree": {"test": 6}}
    reference = build_dataset("caption_mnist", "quad1", cache_dir=cache, num_examples={"train": 6, "test": 4})
    loaded = datasets.load_dataset(str(out), "quad1", cache_dir=str(tmp_path / "load_cache"))
    assert loaded["train"]["caption"][:] == reference["train"]["caption"][:]
    assert loaded["test"]["objects"][:] == reference["test"]["objects"][:]
    assert np.array_equal(np.asarray(loaded["test"][0]["image"]), np.asarray(reference["test"][0]["image"]))
    degree = datasets.load_dataset(str(out), "quad1_degree", cache_dir=str(tmp_path / "load_cache"))
    assert degree["test"]["degree"][:] == [1, 0, 1, 0, 1, 0]
    card = (out / "README.md").read_text()
    assert "config_name: quad1_degree" in card and "| train | 6 |" in card and "| test | 6 |" in card


def test_arrow_format(tmp_path):
    out = tmp_path / "out"
    main(["build", "caption_mnist", "--config", "single", "--num_examples", "validation=3", "--format", "arrow",
          "--output", str(out), "--cache_dir", str(tmp_path / "cache"), "--set", "seed=5"])  # fmt: skip
    loaded = datasets.load_from_disk(str(out / "single"))
    assert len(loaded["validation"]) == 3 and loaded["validation"][0]["objects"][0]["position"] == "center"


def test_bad_override_is_rejected(tmp_path):
    with pytest.raises(SystemExit, match="key=value"):
        main(["build", "caption_mnist", "--set", "seed", "--cache_dir", str(tmp_path)])


@pytest.mark.parametrize("card_data", CARD_DATA, ids=lambda p: p.parent.name)
def test_committed_dataset_cards_are_up_to_date(card_data):
    assert check_dataset_card(card_data) == []
    card = render_dataset_card(card_data)
    assert card.data.pretty_name and card.data.configs and "## Citation" in card.text
    builder = card_data.parent.name
    assert (dataset_scripts_dir() / builder / f"{builder}.py").is_file()


def test_every_builder_has_a_card():
    builders = {p.parent.name for p in dataset_scripts_dir().glob("*/*.py") if p.stem == p.parent.name}
    assert builders == {p.parent.name for p in CARD_DATA}


def test_local_folder_builder_exports_embedded_images(tmp_path):
    """A Parquet export of a local-folder dataset carries the image bytes: it loads after the source folder is gone."""
    import shutil

    source = tmp_path / "flowers"
    shutil.copytree(ROOT / "tests" / "fixtures" / "caption_folders" / "flowers102", source)
    out = tmp_path / "out"
    main(["build", "flowers102_captions", "--data_dir", str(source), "--output", str(out),
          "--cache_dir", str(tmp_path / "cache")])  # fmt: skip
    expected = build_dataset("flowers102_captions", data_dir=source, cache_dir=tmp_path / "cache")["train"]
    pixels = [np.asarray(row["image"]) for row in expected]
    shutil.rmtree(source)
    loaded = datasets.load_dataset(str(out), "default", cache_dir=str(tmp_path / "load_cache"))["train"]
    assert loaded["captions"][:] == expected["captions"][:]
    assert all(np.array_equal(np.asarray(row["image"]), p) for row, p in zip(loaded, pixels))
