"""Caption MNIST (MXQ-VAE, "Dataset"): coloured MNIST digits in the quadrants of a 2x2 canvas with a caption naming
each digit's colour and position, and its Degree variant.

* ``single``: one digit alone, scaled up to fill the canvas ("This is white 7.").
* ``quad1`` ... ``quad4``: K digits at their native 28x28 size, each centred in its own quadrant (K distinct
  quadrants), described in a random order with random clause templates and synonyms.
* Degree (``num_objects`` = K, degree d): the same pair, but K - d of the K described objects have both their colour
  and their digit replaced by different random ones, in the caption only.

Each example is a pure function of ``(seed, layout, K, split, index)``, so the first n examples of a split do not
depend on how many are generated, and a Degree set reuses exactly the pairs of its QuadK set. Digits of a split come
only from the same MNIST split (``mnist.load_mnist``: train 0-49,999, validation 50,000-59,999, test), so no test
digit image reaches training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .caption_grammar import (
    CENTER,
    QUAD_TEMPLATES,
    QUADRANTS,
    SINGLE_TEMPLATES,
    CaptionObject,
    PhraseStyle,
    parse_caption,
    render_caption,
)

__all__ = [
    "COLORS",
    "DEFAULT_COLORS",
    "CaptionMnistScene",
    "check_options",
    "colour_layout_groups",
    "compose_image",
    "degree_variant",
    "generate_caption_mnist",
    "generate_caption_mnist_degree",
    "sample_scene",
]

COLORS = {  # colour word -> RGB multiplier of the grayscale digit
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}
DEFAULT_COLORS = ("white", "red", "green", "blue")
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


@dataclass(frozen=True)
class CaptionMnistScene:
    """A pair before rendering: objects in caption order, their wording, and the MNIST index of each digit image."""

    objects: tuple[CaptionObject, ...]
    styles: tuple[PhraseStyle, ...]
    mnist_indices: tuple[int, ...]

    @property
    def caption(self) -> str:
        return render_caption(list(self.objects), list(self.styles))


def check_options(num_objects: int, single: bool, image_size: int, colors) -> tuple[str, ...]:
    """Validate a Caption MNIST configuration up front (before any example is generated); returns the colours."""
    colors = tuple(colors)
    unknown = [c for c in colors if c not in COLORS]
    if unknown or len(colors) < 2 or len(set(colors)) != len(colors):
        raise ValueError(f"colors={colors!r}: expected at least two distinct names from {tuple(COLORS)}.")
    if single and num_objects != 1:
        raise ValueError(f"num_objects={num_objects}: a single-digit canvas holds exactly one digit.")
    if not 1 <= num_objects <= len(QUADRANTS):
        raise ValueError(f"num_objects={num_objects}: expected 1 to {len(QUADRANTS)} digits per canvas.")
    if image_size < 16 or image_size % 4:
        raise ValueError(f"image_size={image_size}: expected a multiple of 4, at least 16 (default 64).")
    return colors


def _example_rng(seed: int, single: bool, num_objects: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(single), num_objects, _SPLIT_IDS[split], index])


def sample_scene(
    rng: np.random.Generator, labels: np.ndarray, num_objects: int, colors: tuple[str, ...], single: bool = False
) -> CaptionMnistScene:
    """Draw digit images (indices into ``labels``), colours, quadrants and wording for one pair."""
    indices = rng.integers(0, len(labels), size=num_objects)
    positions = [CENTER] if single else [QUADRANTS[q] for q in rng.permutation(len(QUADRANTS))[:num_objects]]
    n_templates = len(SINGLE_TEMPLATES) if single else len(QUAD_TEMPLATES)
    objects, styles = [], []
    for index, position in zip(indices, positions):
        color = colors[rng.integers(len(colors))]
        objects.append(CaptionObject(digit=int(labels[index]), color=str(color), position=position))
        styles.append(PhraseStyle(template=int(rng.integers(n_templates)), synonym=int(rng.integers(2))))
    return CaptionMnistScene(tuple(objects), tuple(styles), tuple(int(i) for i in indices))


def _resize(digit: np.ndarray, size: int) -> np.ndarray:
    if digit.shape[0] == size:
        return digit
    from PIL import Image

    return np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR))


def compose_image(scene: CaptionMnistScene, digit_images: np.ndarray, image_size: int = 64) -> np.ndarray:
    """The ``(image_size, image_size, 3)`` uint8 canvas: each grayscale digit tinted by its colour, on black.

    Quadrant digits fill their ``image_size // 2`` quadrant less a 2-pixel margin (28x28 at 64x64); a single digit
    fills the canvas less a 4-pixel margin."""
    canvas = np.zeros((image_size, image_size, 3), dtype=np.float32)
    half = image_size // 2
    for obj, index in zip(scene.objects, scene.mnist_indices):
        if obj.position == CENTER:
            top = left = 4
            size = image_size - 8
        else:
            row, col = divmod(QUADRANTS.index(obj.position), 2)
            top, left, size = row * half + 2, col * half + 2, half - 4
        digit = _resize(digit_images[index], size).astype(np.float32) / 255.0  # (size, size) in [0, 1]
        tint = np.asarray(COLORS[obj.color], dtype=np.float32)  # (3,)
        canvas[top : top + size, left : left + size] = digit[..., None] * tint
    return np.round(canvas).clip(0, 255).astype(np.uint8)


def _objects_record(scene: CaptionMnistScene) -> list[dict]:
    return [
        {"position": o.position, "digit": o.digit, "color": o.color, "mnist_index": i}
        for o, i in zip(scene.objects, scene.mnist_indices)
    ]


def _load_split(split: str, mnist_source: str, mnist_root) -> tuple[np.ndarray, np.ndarray]:
    from .mnist import load_mnist

    if split not in _SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {tuple(_SPLIT_IDS)}.")
    images, labels = load_mnist(split, source=mnist_source, root=mnist_root)
    return images.numpy(), labels.numpy()


def _scenes(split, num_examples, num_objects, single, seed, colors, labels) -> Iterator[CaptionMnistScene]:
    for index in range(num_examples):
        rng = _example_rng(seed, single, num_objects, split, index)
        yield sample_scene(rng, labels, num_objects, colors, single=single)


def generate_caption_mnist(
    split: str,
    num_examples: int,
    num_objects: int = 1,
    single: bool = False,
    seed: int = 0,
    image_size: int = 64,
    colors=DEFAULT_COLORS,
    mnist_source: str = "auto",
    mnist_root=None,
) -> Iterator[dict]:
    """Caption MNIST pairs of ``split``: ``{"image": uint8 (H, W, 3), "caption": str, "objects": [{"position",
    "digit", "color", "mnist_index"}, ...] in caption order, "mnist_split": split}``."""
    colors = check_options(num_objects, single, image_size, colors)
    images, labels = _load_split(split, mnist_source, mnist_root)
    for scene in _scenes(split, num_examples, num_objects, single, seed, colors, labels):
        yield {
            "image": compose_image(scene, images, image_size),
            "caption": scene.caption,
            "objects": _objects_record(scene),
            "mnist_split": split,
        }


def degree_variant(
    scene: CaptionMnistScene, degree: int, rng: np.random.Generator, colors: tuple[str, ...]
) -> tuple[CaptionMnistScene, list[bool]]:
    """The scene as a Degree caption describes it: ``degree`` of its K objects kept, the other K - degree with a
    different colour and a different digit (same position and wording). Returns it and ``changed`` per object."""
    k = len(scene.objects)
    if not 0 <= degree <= k:
        raise ValueError(f"degree={degree}: expected 0 to {k} (the number of described objects).")
    changed_slots = set(rng.permutation(k)[: k - degree].tolist())
    objects = []
    for slot, obj in enumerate(scene.objects):
        if slot in changed_slots:
            digit = int(rng.choice([d for d in range(10) if d != obj.digit]))
            color = str(rng.choice([c for c in colors if c != obj.color]))
            obj = CaptionObject(digit=digit, color=color, position=obj.position)
        objects.append(obj)
    changed = [slot in changed_slots for slot in range(k)]
    return CaptionMnistScene(tuple(objects), scene.styles, scene.mnist_indices), changed


def generate_caption_mnist_degree(
    split: str,
    num_examples: int,
    num_objects: int,
    seed: int = 0,
    image_size: int = 64,
    colors=DEFAULT_COLORS,
    mnist_source: str = "auto",
    mnist_root=None,
) -> Iterator[dict]:
    """The Degree set of QuadK: for each of the first ``num_examples`` QuadK pairs of ``split`` (the very pairs of
    :func:`generate_caption_mnist` with the same seed), one row per degree K, K-1, ..., 0 with the modified caption,
    the original caption, the true ``objects``, the ``caption_objects`` the modified caption describes, and
    ``changed`` (per object slot)."""
    colors = check_options(num_objects, False, image_size, colors)
    images, labels = _load_split(split, mnist_source, mnist_root)
    for index, scene in enumerate(_scenes(split, num_examples, num_objects, False, seed, colors, labels)):
        image = compose_image(scene, images, image_size)
        rng = np.random.default_rng([seed, 7, num_objects, _SPLIT_IDS[split], index])  # a stream of its own
        for degree in range(num_objects, -1, -1):
            described, changed = degree_variant(scene, degree, rng, colors)
            yield {
                "image": image,
                "caption": described.caption,
                "original_caption": scene.caption,
                "degree": degree,
                "num_objects": num_objects,
                "objects": _objects_record(scene),
                "caption_objects": _objects_record(described),
                "changed": changed,
                "mnist_split": split,
            }


def colour_layout_groups(captions: list[str], colors: tuple[str, ...] = DEFAULT_COLORS) -> list[int]:
    """A group id per caption: captions naming the same colours at the same positions share one (their pairs differ
    only in their digits). Hard-negative batches (``mmquant.training.grouped_batch``) draw from one group."""
    keys = [frozenset((o.position, o.color) for o in parse_caption(c, colors)) for c in captions]
    ids = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return [ids[key] for key in keys]
