"""Readers for the image-caption datasets of the papers, from local folders in their published layouts.

One function per on-disk format; each checks its inputs up front and returns ``{split: [row, ...]}`` with plain
dict rows ``{"image": <path str>, "captions": [str, ...], "image_id": str, ...}`` (captions stripped of surrounding
whitespace, otherwise as written). A missing file or folder raises ``FileNotFoundError`` naming its full path and
the expected layout; a malformed file (bad JSON, a caption file without captions, an annotation referring to a
missing image) raises ``ValueError`` naming the file and the problem. Nothing is silently skipped.

* :func:`read_ten_caption_folder`: the ten-captions-per-image layout of Reed et al. 2016 ("Learning Deep
  Representations of Fine-Grained Visual Descriptions", https://github.com/reedscot/cvpr2016) used for Oxford
  Flowers-102 and CUB-200-2011 by StackGAN, AttnGAN, MXQ-VAE and LAViTeR.
* :func:`read_coco_captions`: the official COCO captions annotations (2014 or 2017).
* :func:`read_karpathy_split`: the Karpathy & Fei-Fei 2015 split files (``dataset_flickr30k.json``,
  ``dataset_coco.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = [
    "COCO_YEARS",
    "KARPATHY_CITATION",
    "KARPATHY_LAYOUTS",
    "TEN_CAPTION_LAYOUTS",
    "read_coco_captions",
    "read_karpathy_split",
    "read_ten_caption_folder",
]

# Layout of each ten-caption dataset under data_dir: the image folder (CUB: one sub-folder per class), the caption
# folder names accepted (the first that exists wins), and whether the image path includes the class folder.
TEN_CAPTION_LAYOUTS: dict[str, dict] = {
    "flowers102": {
        "images": "jpg",
        "text_dirs": ("text_c10",),
        "class_subfolders": False,
        "layout": (
            "  jpg/image_00001.jpg ...                    (102flowers.tgz of the Oxford 102 Flowers dataset)\n"
            "  text_c10/class_00001/image_00001.txt ...   (ten captions per image, one per line)\n"
            "  trainvalclasses.txt, testclasses.txt       (one class folder name per line)\n"
            "(text_c10/ and the class lists come from Reed et al.'s cvpr2016_flowers.tar.gz)"
        ),
    },
    "cub200": {
        "images": "CUB_200_2011/images",
        "text_dirs": ("text_c10", "text"),
        "class_subfolders": True,
        "layout": (
            "  CUB_200_2011/images/<class>/<name>.jpg     (CUB_200_2011.tgz)\n"
            "  CUB_200_2011/images.txt, CUB_200_2011/train_test_split.txt   (for split_by='images')\n"
            "  text_c10/<class>/<name>.txt (or text/ as in AttnGAN's birds folder; ten captions, one per line)\n"
            "  trainvalclasses.txt, testclasses.txt       (for split_by='classes'; one class folder name per line)\n"
            "(text_c10/ and the class lists come from Reed et al.'s cvpr2016_cub.tar.gz)"
        ),
    },
}

KARPATHY_CITATION = """\
@inproceedings{karpathy2015deep,
    title     = {Deep Visual-Semantic Alignments for Generating Image Descriptions},
    author    = {Andrej Karpathy and Li Fei-Fei},
    booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
    year      = {2015}
}
"""

COCO_YEARS = ("2014", "2017")

# Karpathy split files: the JSON under data_dir, and the folder the image paths are relative to (dataset_coco.json
# gives each image's folder in "filepath", train2014/ or val2014/, relative to data_dir).
KARPATHY_LAYOUTS: dict[str, dict] = {
    "flickr30k": {
        "json": "dataset_flickr30k.json",
        "image_root": "flickr30k-images",
        "layout": "  dataset_flickr30k.json   (Karpathy split)\n  flickr30k-images/<filename>.jpg",
    },
    "coco": {
        "json": "dataset_coco.json",
        "image_root": "",
        "layout": (
            "  dataset_coco.json        (Karpathy split)\n"
            "  train2014/COCO_train2014_*.jpg, val2014/COCO_val2014_*.jpg   (paths from 'filepath'/'filename')"
        ),
    },
}
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}


# ---------------------------------------------------------------------------------------------------------- helpers


def _missing(path: Path, what: str, layout: str) -> FileNotFoundError:
    return FileNotFoundError(f"Missing {what}: {path}. Expected under data_dir:\n{layout}")


def _data_dir(data_dir: str | os.PathLike, layout: str) -> Path:
    if data_dir is None:
        raise ValueError(f"data_dir is None: pass the folder holding the dataset. Expected layout:\n{layout}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise _missing(root, "data_dir folder", layout)
    return root


def _require_file(path: Path, layout: str) -> Path:
    if not path.is_file():
        raise _missing(path, "file", layout)
    return path


def _require_dir(path: Path, layout: str) -> Path:
    if not path.is_dir():
        raise _missing(path, "folder", layout)
    return path


def _read_json(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); re-download or re-extract the file.") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}); re-download or re-extract the file.") from e


def _caption(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty caption string, got {value!r}.")
    return value.strip()


class _Listing:
    """Names of the files of each folder, listed once: checking 100k images with one ``stat`` each is slow on
    network file systems, one directory listing is not."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def has(self, path: Path) -> bool:
        folder = path.parent
        if folder not in self._names:
            try:
                self._names[folder] = frozenset(e.name for e in os.scandir(folder) if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                self._names[folder] = frozenset()
        return path.name in self._names[folder]


# ------------------------------------------------------------------------------------------- ten-caption folders


def _read_class_list(path: Path, layout: str) -> list[str]:
    _require_file(path, layout)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]  # blank lines (a trailing newline) are not classes
    if not names:
        raise ValueError(f"{path}: lists no class; expected one class folder name per line.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: lists the classes {duplicates} more than once.")
    return names


def _read_caption_file(path: Path) -> list[str]:
    # Reed et al.'s files are UTF-8 (a few CUB captions hold U+FFFD characters); errors="replace" keeps any stray
    # byte visible as U+FFFD instead of failing a whole 11k-file build.
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    captions = [line for line in lines if line]
    if not captions:
        raise ValueError(f"{path}: caption file has no captions; expected one caption per line (ten per image).")
    return captions


def _row(image: Path, text: Path, class_name: str, listing: _Listing, referred_by: Path) -> dict:
    if not listing.has(image):
        raise ValueError(f"{referred_by} refers to the image {image}, which does not exist; re-extract the images.")
    return {
        "image": str(image),
        "captions": _read_caption_file(text),
        "image_id": image.stem,
        "class_name": class_name,
    }


def read_ten_caption_folder(
    data_dir: str | os.PathLike, *, dataset: str = "flowers102", split_by: str = "classes"
) -> dict[str, list[dict]]:
    """Read a Reed et al. 2016 ten-caption folder (Oxford Flowers-102 or CUB-200-2011) into ``{"train": rows,
    "test": rows}``, rows ``{"image", "captions", "image_id", "class_name"}``.

    ``dataset`` is ``"flowers102"`` (``jpg/image_00001.jpg``, captions ``text_c10/class_00001/image_00001.txt``) or
    ``"cub200"`` (``CUB_200_2011/images/<class>/<name>.jpg``, captions ``text_c10/<class>/<name>.txt``, or
    ``text/`` as in AttnGAN's ``birds`` folder). ``split_by="classes"`` (the text-to-image convention: Flowers
    82/20 classes, CUB 150/50 classes = 8,855/2,933 images) reads the class-disjoint lists ``trainvalclasses.txt``
    (train) and ``testclasses.txt`` (test) and takes every caption file of each class, sorted by name;
    ``split_by="images"`` (CUB only: 5,994/5,794 images) takes the official CUB image split from
    ``CUB_200_2011/images.txt`` and ``CUB_200_2011/train_test_split.txt``, in ``images.txt`` order.
    """
    if dataset not in TEN_CAPTION_LAYOUTS:
        raise ValueError(f"dataset={dataset!r}: expected one of {sorted(TEN_CAPTION_LAYOUTS)}.")
    if split_by not in ("classes", "images"):
        raise ValueError(f"split_by={split_by!r}: expected 'classes' (class-disjoint lists) or 'images' (CUB only).")
    spec = TEN_CAPTION_LAYOUTS[dataset]
    if split_by == "images" and dataset != "cub200":
        raise ValueError(
            f"split_by='images' needs CUB's images.txt/train_test_split.txt; {dataset} has no such split."
        )
    layout = spec["layout"]
    root = _data_dir(data_dir, layout)

    text_root = next((root / name for name in spec["text_dirs"] if (root / name).is_dir()), None)
    if text_root is None:
        raise _missing(root / spec["text_dirs"][0], f"caption folder (any of {list(spec['text_dirs'])})", layout)
    image_root = _require_dir(root / spec["images"], layout)
    listing = _Listing()

    if split_by == "images":
        return _read_cub_image_split(root, text_root, image_root, listing, layout)

    lists = {"train": root / "trainvalclasses.txt", "test": root / "testclasses.txt"}
    classes = {split: _read_class_list(path, layout) for split, path in lists.items()}
    shared = sorted(set(classes["train"]) & set(classes["test"]))
    if shared:
        raise ValueError(
            f"{lists['test']}: the classes {shared} are also in {lists['train']}; the lists must be disjoint."
        )
    for split, names in classes.items():
        for name in names:
            _require_dir(text_root / name, layout + f"\n(class {name!r} is listed in {lists[split]})")

    splits: dict[str, list[dict]] = {}
    for split, names in classes.items():
        rows = []
        for name in names:
            texts = sorted((text_root / name).glob("*.txt"))
            if not texts:
                raise ValueError(f"{text_root / name}: no caption files (*.txt) for class {name!r}.")
            for text in texts:
                folder = image_root / name if spec["class_subfolders"] else image_root
                rows.append(_row(folder / f"{text.stem}.jpg", text, name, listing, text))
        splits[split] = rows
    return splits


def _read_id_file(path: Path, layout: str) -> list[tuple[str, str]]:
    _require_file(path, layout)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{path}, line {number}: expected '<image id> <value>', got {line!r}.")
        rows.append((fields[0], fields[1]))
    if not rows:
        raise ValueError(f"{path}: empty; expected one '<image id> <value>' line per image.")
    return rows


def _read_cub_image_split(
    root: Path, text_root: Path, image_root: Path, listing: _Listing, layout: str
) -> dict[str, list[dict]]:
    images_txt = root / "CUB_200_2011" / "images.txt"
    split_txt = root / "CUB_200_2011" / "train_test_split.txt"
    images = _read_id_file(images_txt, layout)
    is_train = dict(_read_id_file(split_txt, layout))
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for image_id, relative in images:
        flag = is_train.get(image_id)
        if flag not in ("0", "1"):
            raise ValueError(
                f"{split_txt}: image id {image_id} (from {images_txt}) has "
                + ("no line" if flag is None else f"the value {flag!r}, expected 1 (train) or 0 (test)")
                + "."
            )
        class_name, _, name = relative.partition("/")
        if not name:
            raise ValueError(f"{images_txt}: image {image_id} path {relative!r} is not '<class>/<name>.jpg'.")
        text = text_root / class_name / f"{Path(name).stem}.txt"
        _require_file(text, layout + f"\n(caption file of image {image_id} of {images_txt})")
        row = _row(image_root / relative, text, class_name, listing, images_txt)
        splits["train" if flag == "1" else "test"].append(row)
    if len(is_train) != len(images):
        extra = sorted(set(is_train) - {i for i, _ in images})
        raise ValueError(f"{split_txt}: image ids {extra[:10]} are not in {images_txt}.")
    return splits


# ------------------------------------------------------------------------------------------------------- COCO


def read_coco_captions(data_dir: str | os.PathLike, *, year: str = "2014") -> dict[str, list[dict]]:
    """Read the official COCO captions into ``{"train": rows, "validation": rows}``, rows ``{"image", "captions",
    "image_id", "file_name"}``: all captions of an image (usually 5), in annotation-file order; images in the order
    of the annotation file's ``images`` list.

    Expects ``annotations/captions_train<year>.json`` and ``annotations/captions_val<year>.json`` with the images in
    ``train<year>/<file_name>`` and ``val<year>/<file_name>`` under ``data_dir`` (the test images have no public
    captions).
    """
    year = str(year)
    if year not in COCO_YEARS:
        raise ValueError(f"year={year!r}: expected one of {list(COCO_YEARS)}.")
    layout = (
        f"  annotations/captions_train{year}.json, annotations/captions_val{year}.json"
        f"   (annotations_trainval{year}.zip)\n"
        f"  train{year}/<file_name>, val{year}/<file_name>   (train{year}.zip, val{year}.zip)"
    )
    root = _data_dir(data_dir, layout)
    parts = {"train": "train", "validation": "val"}
    files = {split: root / "annotations" / f"captions_{part}{year}.json" for split, part in parts.items()}
    folders = {split: root / f"{part}{year}" for split, part in parts.items()}
    for split in parts:
        _require_file(files[split], layout)
        _require_dir(folders[split], layout)
    listing = _Listing()
    return {split: _read_coco_file(files[split], folders[split], listing) for split in parts}


def _read_coco_file(path: Path, folder: Path, listing: _Listing) -> list[dict]:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected a JSON object with an 'images' list (a COCO captions annotation file).")
    if not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: expected a JSON object with an 'annotations' list (a COCO captions file).")
    images: dict[int, dict] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise ValueError(f"{path}: images[{i}] = {image!r} lacks an 'id' or a 'file_name'.")
        if image["id"] in images:
            raise ValueError(f"{path}: image id {image['id']} appears twice in 'images'.")
        images[image["id"]] = image
    captions: dict[int, list[str]] = {image_id: [] for image_id in images}
    for i, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise ValueError(f"{path}: annotations[{i}] = {annotation!r} lacks an 'image_id'.")
        if annotation["image_id"] not in captions:
            raise ValueError(f"{path}: annotations[{i}] refers to image_id {annotation['image_id']}, not in 'images'.")
        captions[annotation["image_id"]].append(_caption(annotation.get("caption"), f"{path}: annotations[{i}]"))
    rows = []
    for image_id, image in images.items():
        if not captions[image_id]:
            raise ValueError(f"{path}: image {image_id} ({image['file_name']}) has no caption annotation.")
        file = folder / image["file_name"]
        if not listing.has(file):
            raise ValueError(f"{path} refers to the image {file}, which does not exist; re-extract {folder.name}.zip.")
        rows.append(
            {"image": str(file), "captions": captions[image_id], "image_id": str(image_id), "file_name": file.name}
        )
    return rows


# --------------------------------------------------------------------------------------------- Karpathy split


def read_karpathy_split(
    data_dir: str | os.PathLike, *, dataset: str = "flickr30k", include_restval: bool = True
) -> dict[str, list[dict]]:
    """Read a Karpathy & Fei-Fei (2015) split file into ``{"train", "validation", "test"}`` rows ``{"image",
    "captions", "image_id", "file_name", "karpathy_split"}`` (captions = each sentence's ``raw``; ``image_id`` =
    ``cocoid`` when present, else the file name without extension; ``karpathy_split`` the file's own split name).

    ``dataset="flickr30k"``: ``dataset_flickr30k.json`` with images in ``flickr30k-images/``; ``dataset="coco"``:
    ``dataset_coco.json`` with images at ``<filepath>/<filename>`` (``train2014/``, ``val2014/``). Split ``val``
    becomes ``validation``. ``restval`` (COCO's 30,504 val2014 images outside the 5k val / 5k test) is added to
    ``train``, as in Karpathy's code and most captioning/retrieval work (113,287 training images); with
    ``include_restval=False`` those images are left out of every split (82,783 training images).
    """
    if dataset not in KARPATHY_LAYOUTS:
        raise ValueError(f"dataset={dataset!r}: expected one of {sorted(KARPATHY_LAYOUTS)}.")
    spec = KARPATHY_LAYOUTS[dataset]
    layout = spec["layout"]
    root = _data_dir(data_dir, layout)
    path = _require_file(root / spec["json"], layout)
    image_root = root / spec["image_root"]
    if spec["image_root"]:
        _require_dir(image_root, layout)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected a JSON object with an 'images' list (a Karpathy split file).")

    listing = _Listing()
    checked_folders: set[Path] = set()
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for i, entry in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            raise ValueError(f"{where} lacks a 'filename'.")
        split = entry.get("split")
        if split not in _KARPATHY_SPLITS:
            raise ValueError(f"{where} ({entry['filename']}) has split {split!r}; expected {list(_KARPATHY_SPLITS)}.")
        sentences = entry.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise ValueError(f"{where} ({entry['filename']}) has no 'sentences'.")
        captions = []
        for j, sentence in enumerate(sentences):
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            captions.append(_caption(raw, f"{where}.sentences[{j}]"))
        folder = image_root / entry["filepath"] if isinstance(entry.get("filepath"), str) else image_root
        if folder not in checked_folders:
            _require_dir(folder, layout + f"\n(folder of {where})")
            checked_folders.add(folder)
        file = folder / entry["filename"]
        if not listing.has(file):
            raise ValueError(f"{where} refers to the image {file}, which does not exist; re-extract the images.")
        image_id = str(entry["cocoid"]) if "cocoid" in entry else Path(entry["filename"]).stem
        if image_id in seen:
            raise ValueError(f"{where}: image {image_id} appears twice.")
        seen.add(image_id)
        if split == "restval" and not include_restval:
            continue  # documented option, not a silent skip
        splits[_KARPATHY_SPLITS[split]].append(
            {
                "image": str(file),
                "captions": captions,
                "image_id": image_id,
                "file_name": entry["filename"],
                "karpathy_split": split,
            }
        )
    return splits
