"""The caption-dataset builders (Flowers-102, CUB-200-2011, COCO, Flickr30k) on tiny fixtures in the real formats
(``tests/fixtures/caption_folders/``, written by its ``make_fixtures.py``), their errors on missing or malformed
files, and the colour-word swaps of the MXQ-VAE Degree sets."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmquant.data.builders import build_dataset
from mmquant.data.caption_folders import read_ten_caption_folder
from mmquant.data.color_words import (
    COLOR_WORDS,
    count_color_words,
    degree_rows,
    find_color_words,
    replacement_colors,
    swap_color_words,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "caption_folders"
FOLDER = {
    "flowers102_captions": "flowers102",
    "cub200_captions": "cub200",
    "coco_captions": "coco",
    "flickr30k_captions": "flickr30k",
}


def copy_fixture(builder: str, tmp_path: Path) -> Path:
    target = tmp_path / FOLDER[builder]
    shutil.copytree(FIXTURES / FOLDER[builder], target)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each (builder, config, options) once per module from the shipped fixtures."""
    cache: dict = {}

    def get(builder: str, config: str | None = None, **options):
        key = (builder, config, tuple(sorted(options.items())))
        if key not in cache:
            cache_dir = tmp_path_factory.mktemp("cache")
            cache[key] = build_dataset(
                builder, config, data_dir=FIXTURES / FOLDER[builder], cache_dir=cache_dir, **options
            )
        return cache[key]

    return get


# ----------------------------------------------------------------------------------------- expected rows from files


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_ten_caption(root: Path, dataset: str, split_by: str = "classes", text: str = "text_c10") -> dict:
    def image_of(class_name: str, stem: str) -> Path:
        if dataset == "flowers102":
            return root / "jpg" / f"{stem}.jpg"
        return root / "CUB_200_2011" / "images" / class_name / f"{stem}.jpg"

    splits = {"train": [], "test": []}
    if split_by == "classes":
        for split, list_file in (("train", "trainvalclasses.txt"), ("test", "testclasses.txt")):
            for class_name in lines(root / list_file):
                for txt in sorted((root / text / class_name).glob("*.txt")):
                    splits[split].append((txt.stem, class_name, lines(txt), image_of(class_name, txt.stem)))
    else:
        is_train = dict(line.split() for line in lines(root / "CUB_200_2011" / "train_test_split.txt"))
        for line in lines(root / "CUB_200_2011" / "images.txt"):
            image_id, relative = line.split()
            class_name, name = relative.split("/")
            stem = Path(name).stem
            row = (stem, class_name, lines(root / text / class_name / f"{stem}.txt"), image_of(class_name, stem))
            splits["train" if is_train[image_id] == "1" else "test"].append(row)
    return splits


def assert_image(decoded, path: Path) -> None:
    with Image.open(path) as image:
        assert decoded.size == image.size
        assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(image.convert("RGB")))


def assert_ten_caption_rows(ds, expected: dict) -> None:
    assert set(ds) == set(expected)
    for split, rows in expected.items():
        assert len(ds[split]) == len(rows)
        for got, (image_id, class_name, captions, image) in zip(ds[split], rows):
            assert got["image_id"] == image_id
            assert got["class_name"] == class_name
            assert got["captions"] == captions
            assert len(got["captions"]) == 10
            assert_image(got["image"], image)


# ------------------------------------------------------------------------------------------- Flowers-102 and CUB


def test_flowers_rows_match_the_files(built):
    ds = built("flowers102_captions")
    assert_ten_caption_rows(ds, expected_ten_caption(FIXTURES / "flowers102", "flowers102"))
    assert ds["train"].features["captions"].feature.dtype == "string"


@pytest.mark.parametrize("builder", ["flowers102_captions", "cub200_captions"])
def test_class_splits_are_disjoint(built, builder):
    ds = built(builder)
    root = FIXTURES / FOLDER[builder]
    assert set(ds["train"]["class_name"]) == set(lines(root / "trainvalclasses.txt"))
    assert set(ds["test"]["class_name"]) == set(lines(root / "testclasses.txt"))
    assert not set(ds["train"]["class_name"]) & set(ds["test"]["class_name"])
    assert not set(ds["train"]["image_id"]) & set(ds["test"]["image_id"])


def test_cub_class_split_rows_match_the_files(built):
    ds = built("cub200_captions")
    assert_ten_caption_rows(ds, expected_ten_caption(FIXTURES / "cub200", "cub200"))


def test_cub_image_split_rows_match_the_files(built):
    ds = built("cub200_captions", split_by="images")
    expected = expected_ten_caption(FIXTURES / "cub200", "cub200", split_by="images")
    assert_ten_caption_rows(ds, expected)
    # The official CUB split mixes classes: both splits hold images of the test class.
    assert set(ds["train"]["class_name"]) & set(ds["test"]["class_name"])


def test_cub_accepts_attngan_text_folder(tmp_path):
    root = copy_fixture("cub200_captions", tmp_path)
    (root / "text_c10").rename(root / "text")
    ds = build_dataset("cub200_captions", data_dir=root, cache_dir=tmp_path / "cache")
    assert_ten_caption_rows(ds, expected_ten_caption(root, "cub200", text="text"))


# ------------------------------------------------------------------------------------------------ COCO, Flickr30k


def expected_coco(root: Path, part: str, year: str) -> list[tuple]:
    data = json.loads((root / "annotations" / f"captions_{part}{year}.json").read_text())
    captions = defaultdict(list)
    for annotation in data["annotations"]:
        captions[annotation["image_id"]].append(annotation["caption"].strip())
    return [
        (
            str(image["id"]),
            image["file_name"],
            captions[image["id"]],
            root / f"{part}{year}" / image["file_name"],
            image,
        )
        for image in data["images"]
    ]


@pytest.mark.parametrize("year", ["2014", "2017"])
def test_coco_rows_match_the_annotations(built, year):
    ds = built("coco_captions", year)
    root = FIXTURES / "coco"
    assert set(ds) == {"train", "validation"}
    for split, part in (("train", "train"), ("validation", "val")):
        expected = expected_coco(root, part, year)
        assert len(ds[split]) == len(expected)
        for got, (image_id, file_name, captions, path, meta) in zip(ds[split], expected):
            assert (got["image_id"], got["file_name"], got["captions"]) == (image_id, file_name, captions)
            assert len(captions) >= 5
            assert got["image"].size == (meta["width"], meta["height"])
            assert_image(got["image"], path)
    # Captions are grouped per image although the annotation file interleaves them.
    assert any(len(c) == 6 for c in ds["train"]["captions"])


def karpathy_images(path: Path) -> list[dict]:
    return json.loads(path.read_text())["images"]


def test_coco_karpathy_puts_restval_into_train(built):
    ds = built("coco_captions", "karpathy")
    root = FIXTURES / "coco"
    entries = karpathy_images(root / "dataset_coco.json")
    by_split = defaultdict(list)
    for entry in entries:
        by_split[{"restval": "train", "val": "validation"}.get(entry["split"], entry["split"])].append(entry)
    assert set(ds) == {"train", "validation", "test"}
    for split, rows in by_split.items():
        assert [r["image_id"] for r in ds[split]] == [str(e["cocoid"]) for e in rows]
        for got, entry in zip(ds[split], rows):
            assert got["captions"] == [s["raw"].strip() for s in entry["sentences"]]
            assert got["karpathy_split"] == entry["split"]
            assert got["file_name"] == entry["filename"]
            assert_image(got["image"], root / entry["filepath"] / entry["filename"])
    assert "restval" in ds["train"]["karpathy_split"]


def test_coco_karpathy_can_leave_restval_out(built):
    ds = built("coco_captions", "karpathy", include_restval=False)
    entries = karpathy_images(FIXTURES / "coco" / "dataset_coco.json")
    restval = {str(e["cocoid"]) for e in entries if e["split"] == "restval"}
    assert restval
    assert ds["train"]["image_id"] == [str(e["cocoid"]) for e in entries if e["split"] == "train"]
    for split in ds:
        assert not restval & set(ds[split]["image_id"])
        assert "restval" not in ds[split]["karpathy_split"]


def test_flickr30k_rows_match_the_split_file(built):
    ds = built("flickr30k_captions")
    root = FIXTURES / "flickr30k"
    entries = karpathy_images(root / "dataset_flickr30k.json")
    assert set(ds) == {"train", "validation", "test"}
    for split, name in (("train", "train"), ("validation", "val"), ("test", "test")):
        rows = [e for e in entries if e["split"] == name]
        assert ds[split]["image_id"] == [Path(e["filename"]).stem for e in rows]
        for got, entry in zip(ds[split], rows):
            assert got["captions"] == [s["raw"] for s in entry["sentences"]]
            assert_image(got["image"], root / "flickr30k-images" / entry["filename"])


# ------------------------------------------------------------------------------------------------------- errors

MISSING = [
    # (builder, config, options, path removed from the fixture copy, expected error)
    ("flowers102_captions", None, {}, "jpg", FileNotFoundError),
    ("flowers102_captions", None, {}, "text_c10", FileNotFoundError),
    ("flowers102_captions", None, {}, "trainvalclasses.txt", FileNotFoundError),
    ("flowers102_captions", None, {}, "testclasses.txt", FileNotFoundError),
    ("flowers102_captions", None, {}, "text_c10/class_00002", FileNotFoundError),
    ("flowers102_captions", "degree", {}, "testclasses.txt", FileNotFoundError),
    ("flowers102_captions", None, {}, "jpg/image_00005.jpg", ValueError),
    ("cub200_captions", None, {}, "CUB_200_2011/images", FileNotFoundError),
    ("cub200_captions", None, {}, "text_c10", FileNotFoundError),
    ("cub200_captions", None, {}, "trainvalclasses.txt", FileNotFoundError),
    ("cub200_captions", None, {}, "testclasses.txt", FileNotFoundError),
    ("cub200_captions", None, {"split_by": "images"}, "CUB_200_2011/images.txt", FileNotFoundError),
    ("cub200_captions", None, {"split_by": "images"}, "CUB_200_2011/train_test_split.txt", FileNotFoundError),
    (
        "cub200_captions",
        None,
        {"split_by": "images"},
        "text_c10/017.Cardinal/Cardinal_0012_17566.txt",
        FileNotFoundError,
    ),
    ("cub200_captions", None, {}, "CUB_200_2011/images/017.Cardinal/Cardinal_0012_17566.jpg", ValueError),
    ("coco_captions", "2014", {}, "annotations/captions_train2014.json", FileNotFoundError),
    ("coco_captions", "2014", {}, "annotations/captions_val2014.json", FileNotFoundError),
    ("coco_captions", "2014", {}, "train2014", FileNotFoundError),
    ("coco_captions", "2014", {}, "val2014", FileNotFoundError),
    ("coco_captions", "2014", {}, "val2014/COCO_val2014_000000000073.jpg", ValueError),
    ("coco_captions", "2017", {}, "annotations/captions_val2017.json", FileNotFoundError),
    ("coco_captions", "2017", {}, "train2017", FileNotFoundError),
    ("coco_captions", "karpathy", {}, "dataset_coco.json", FileNotFoundError),
    ("coco_captions", "karpathy", {}, "val2014", FileNotFoundError),
    ("coco_captions", "karpathy", {}, "train2014/COCO_train2014_000000000025.jpg", ValueError),
    ("flickr30k_captions", None, {}, "dataset_flickr30k.json", FileNotFoundError),
    ("flickr30k_captions", None, {}, "flickr30k-images", FileNotFoundError),
    ("flickr30k_captions", None, {}, "flickr30k-images/10002456.jpg", ValueError),
]


@pytest.mark.parametrize(("builder", "config", "options", "removed", "error"), MISSING, ids=lambda v: str(v))
def test_missing_file_is_named(tmp_path, builder, config, options, removed, error):
    root = copy_fixture(builder, tmp_path)
    path = root / removed
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(error) as info:
        build_dataset(builder, config, data_dir=root, cache_dir=tmp_path / "cache", **options)
    assert str(path) in str(info.value)
    if error is FileNotFoundError:
        assert "Expected under data_dir" in str(info.value)


@pytest.mark.parametrize("builder", list(FOLDER))
def test_missing_data_dir_is_named(tmp_path, builder):
    with pytest.raises(FileNotFoundError, match="data_dir folder") as info:
        build_dataset(builder, data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "nowhere") in str(info.value)


@pytest.mark.parametrize(
    ("builder", "config"),
    [
        ("flowers102_captions", "degree"),
        ("cub200_captions", None),
        ("coco_captions", "2017"),
        ("coco_captions", "karpathy"),
        ("flickr30k_captions", None),
    ],
)
def test_data_dir_not_given(tmp_path, builder, config):
    with pytest.raises(ValueError, match=r"data_dir is required: build_dataset\('" + builder):
        build_dataset(builder, config, cache_dir=tmp_path / "cache")


MALFORMED_JSON = [
    ("coco_captions", "2014", "annotations/captions_val2014.json"),
    ("coco_captions", "karpathy", "dataset_coco.json"),
    ("flickr30k_captions", None, "dataset_flickr30k.json"),
]


@pytest.mark.parametrize(("builder", "config", "file"), MALFORMED_JSON)
def test_bad_json_is_named(tmp_path, builder, config, file):
    root = copy_fixture(builder, tmp_path)
    path = root / file
    path.write_text(path.read_text()[:-40], encoding="utf-8")  # truncated download
    with pytest.raises(ValueError, match="not valid JSON") as info:
        build_dataset(builder, config, data_dir=root, cache_dir=tmp_path / "cache")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("builder", "file"),
    [
        ("flowers102_captions", "text_c10/class_00003/image_00006.txt"),
        ("cub200_captions", "text_c10/014.Indigo_Bunting/Indigo_Bunting_0031_13300.txt"),
    ],
)
def test_empty_caption_file_is_named(tmp_path, builder, file):
    root = copy_fixture(builder, tmp_path)
    (root / file).write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no captions") as info:
        build_dataset(builder, data_dir=root, cache_dir=tmp_path / "cache")
    assert str(root / file) in str(info.value)


def test_coco_annotation_of_unknown_image(tmp_path):
    root = copy_fixture("coco_captions", tmp_path)
    path = root / "annotations" / "captions_train2014.json"
    data = json.loads(path.read_text())
    data["annotations"].append({"image_id": 999, "id": 1, "caption": "A dog."})
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="image_id 999") as info:
        build_dataset("coco_captions", "2014", data_dir=root, cache_dir=tmp_path / "cache")
    assert str(path) in str(info.value)


def test_karpathy_unknown_split(tmp_path):
    root = copy_fixture("flickr30k_captions", tmp_path)
    path = root / "dataset_flickr30k.json"
    data = json.loads(path.read_text())
    data["images"][1]["split"] = "dev"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"images\[1\].*'dev'"):
        build_dataset("flickr30k_captions", data_dir=root, cache_dir=tmp_path / "cache")


def test_overlapping_class_lists(tmp_path):
    root = copy_fixture("flowers102_captions", tmp_path)
    (root / "testclasses.txt").write_text("class_00002\nclass_00003\n")
    with pytest.raises(ValueError, match=r"\['class_00003'\].*disjoint"):
        build_dataset("flowers102_captions", data_dir=root, cache_dir=tmp_path / "cache")


def test_image_split_is_cub_only():
    with pytest.raises(ValueError, match="split_by='images'"):
        read_ten_caption_folder(FIXTURES / "flowers102", dataset="flowers102", split_by="images")


# ------------------------------------------------------------------------------------------------- Degree sets


def check_degree_row(row: dict, num_slots: int) -> None:
    original, caption = row["original_caption"], row["caption"]
    old = find_color_words(original)[:num_slots]
    new = find_color_words(caption)[:num_slots]
    assert len(old) == len(new) == num_slots
    assert row["num_slots"] == num_slots
    assert len(row["changed"]) == num_slots
    assert sum(row["changed"]) == num_slots - row["degree"]
    vocabulary = set(COLOR_WORDS)
    for changed, (_, _, before), (_, _, after) in zip(row["changed"], old, new):
        if changed:
            assert after.lower() != before.lower()
            assert after.lower() in vocabulary
            assert after.lower() in replacement_colors(before)
        else:
            assert after == before
    # Text outside the slots (between, before and after them) is identical.
    old_cuts = [0] + [p for s, e, _ in old for p in (s, e)] + [len(original)]
    new_cuts = [0] + [p for s, e, _ in new for p in (s, e)] + [len(caption)]
    old_outside = [original[old_cuts[i] : old_cuts[i + 1]] for i in range(0, len(old_cuts), 2)]
    new_outside = [caption[new_cuts[i] : new_cuts[i + 1]] for i in range(0, len(new_cuts), 2)]
    assert old_outside == new_outside


@pytest.mark.parametrize("builder", ["flowers102_captions", "cub200_captions"])
@pytest.mark.parametrize("num_slots", [4, 2])
def test_degree_rows(built, builder, num_slots):
    ds = built(builder, "degree", num_slots=num_slots)
    assert list(ds) == ["test"]
    test = built(builder)["test"]
    expected = {}
    for row in test:
        first = next((c for c in row["captions"] if count_color_words(c) >= num_slots), None)
        if first is not None:
            expected[row["image_id"]] = (first, row["image"].size)
    if num_slots == 4:  # the fixture has one test image without a four-colour caption
        assert 0 < len(expected) == len(test) - 1
    rows = list(ds["test"])
    assert len(rows) == len(expected) * (num_slots + 1)
    by_image = defaultdict(list)
    for row in rows:
        by_image[row["image_id"]].append(row)
        check_degree_row(row, num_slots)
    assert set(by_image) == set(expected)
    for image_id, group in by_image.items():
        assert [r["degree"] for r in group] == list(range(num_slots, -1, -1))
        assert {r["original_caption"] for r in group} == {expected[image_id][0]}
        assert group[0]["caption"] == group[0]["original_caption"]
        assert group[-1]["caption"] != group[-1]["original_caption"]
        assert all(r["image"].size == expected[image_id][1] for r in group)


def test_degree_is_deterministic_given_seed(built, tmp_path):
    first = built("flowers102_captions", "degree", num_slots=2)["test"]
    again = build_dataset(
        "flowers102_captions", "degree", data_dir=FIXTURES / "flowers102", cache_dir=tmp_path, num_slots=2
    )["test"]
    other = built("flowers102_captions", "degree", num_slots=2, seed=1)["test"]
    columns = ["caption", "changed", "degree", "image_id"]
    assert first.select_columns(columns).to_list() == again.select_columns(columns).to_list()
    assert first["caption"] != other["caption"]
    assert first["original_caption"] == other["original_caption"]


# ---------------------------------------------------------------------------------------------- swap_color_words

CAPTION = "The Yellow petals have white-edged tips, a BROWN center and green stamen near the red pistil."


def test_find_color_words_whole_words_case_insensitive():
    spans = find_color_words(CAPTION)
    assert [w for _, _, w in spans] == ["Yellow", "white", "BROWN", "green", "red"]
    assert all(CAPTION[s:e] == w for s, e, w in spans)
    assert find_color_words("a reddish, whitish bird bored of tangerines and redwings") == []
    assert count_color_words("grey-gray and golden gold") == 4


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_swap_keeps_degree_slots(degree):
    rng = np.random.default_rng(degree)
    swap = swap_color_words(CAPTION, 4, degree, rng)
    assert len(swap.changed) == len(swap.before) == len(swap.after) == 4
    assert swap.changed.count(False) == degree
    assert swap.before == ["Yellow", "white", "BROWN", "green"]
    for changed, before, after in zip(swap.changed, swap.before, swap.after):
        assert (after != before) == changed
        if changed:
            assert after.lower() in COLOR_WORDS and after.lower() != before.lower()
    # casing follows the replaced word; the fifth colour word is not a slot and stays
    assert swap.after[0][0].isupper() and swap.after[2].isupper() and swap.after[1].islower()
    assert swap.caption.endswith("stamen near the red pistil.")
    check_degree_row(
        {
            "original_caption": CAPTION,
            "caption": swap.caption,
            "changed": swap.changed,
            "degree": degree,
            "num_slots": 4,
        },
        4,
    )


def test_swap_never_uses_a_spelling_of_the_same_colour():
    for seed in range(200):
        swap = swap_color_words("a grey bird with golden wings", 2, 0, np.random.default_rng(seed))
        assert swap.after[0] not in ("grey", "gray") and swap.after[1] not in ("gold", "golden")


def test_swap_is_deterministic_and_varies_with_the_generator():
    swaps = [swap_color_words(CAPTION, 4, 1, np.random.default_rng(s)) for s in (0, 0, 1, 2, 3)]
    assert swaps[0] == swaps[1]
    assert len({s.caption for s in swaps}) > 2


def test_swap_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fewer than num_slots=3"):
        swap_color_words("a red flower with yellow stamen", 3, 1, rng)
    with pytest.raises(ValueError, match="degree=5"):
        swap_color_words(CAPTION, 4, 5, rng)
    with pytest.raises(ValueError, match="degree=-1"):
        swap_color_words(CAPTION, 4, -1, rng)
    with pytest.raises(ValueError, match="num_slots=0"):
        swap_color_words(CAPTION, 0, 0, rng)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        swap_color_words(CAPTION, 2, 1, 0)


def test_degree_rows_without_any_caption_raises():
    examples = [{"image": "a.jpg", "captions": ["a red flower"], "image_id": "a"}]
    with pytest.raises(ValueError, match="lower num_slots"):
        degree_rows(examples, 2, seed=0)
    rows = degree_rows(examples, 1, seed=0)
    assert [r["degree"] for r in rows] == [1, 0]
