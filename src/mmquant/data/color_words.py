"""Colour words in flower and bird captions, and the Degree sets of MXQ-VAE built from them.

MXQ-VAE ("Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer", Lee et al., NeurIPS 2022
workshop; https://github.com/ttumyche/MXQ-VAE) measures image-text alignment on *Degree datasets*: the caption of a
test pair keeps ``degree`` of its ``num_slots`` colour words and the others are replaced by a different random colour,
the image is left as it is ("Example of the Flower Quad2 Degree Dataset": degree 2 unchanged, degree 1 one colour
word replaced, degree 0 both). Here the slots of a caption are its first ``num_slots`` colour-word occurrences
(whole words, case-insensitive, from :data:`COLOR_WORDS`).

Example:
    >>> import numpy as np
    >>> caption = "this flower has petals that are yellow and has brown stamen."
    >>> [word for _, _, word in find_color_words(caption)]
    ['yellow', 'brown']
    >>> swap = swap_color_words(caption, num_slots=2, degree=1, rng=np.random.default_rng(0))
    >>> sum(swap.changed), swap.before
    (1, ['yellow', 'brown'])
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "COLOR_WORDS",
    "ColorSwap",
    "count_color_words",
    "degree_rows",
    "find_color_words",
    "replacement_colors",
    "swap_color_words",
]

logger = logging.getLogger(__name__)

# Colour names that occur in the Oxford Flowers / CUB captions of Reed et al. (2016), including the rarer ones the
# MXQ-VAE example uses as replacements ("maroon", "wine"). Words with a common non-colour reading in these captions
# ("rose" is a flower, "buff"/"rust"/"lime" are rare and ambiguous) are left out, so a slot is always a colour.
COLOR_WORDS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "white",
    "black",
    "brown",
    "grey",
    "gray",
    "maroon",
    "wine",
    "violet",
    "magenta",
    "lavender",
    "crimson",
    "scarlet",
    "indigo",
    "teal",
    "cyan",
    "gold",
    "golden",
    "silver",
    "tan",
    "beige",
    "cream",
    "olive",
    "burgundy",
)

# Spellings of the same colour: replacing "grey" by "gray" would change the text but not the colour, so a
# replacement is never drawn from the original word's group.
_SAME_COLOR: tuple[frozenset[str], ...] = (frozenset({"grey", "gray"}), frozenset({"gold", "golden"}))


class ColorSwap(NamedTuple):
    """Result of :func:`swap_color_words`: the new caption, and per slot whether it changed and its word before/after
    (``after[i] == before[i]`` exactly where ``changed[i]`` is False)."""

    caption: str
    changed: list[bool]
    before: list[str]
    after: list[str]


def _pattern(vocabulary: Sequence[str]) -> re.Pattern:
    # Longest words first so that an alternation never stops at a prefix; \b makes matches whole words (a hyphen
    # counts as a boundary, so "yellow-orange" holds two colour words, "whitish" none).
    words = sorted({w.lower() for w in vocabulary}, key=lambda w: (-len(w), w))
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


_DEFAULT_PATTERN = _pattern(COLOR_WORDS)


def find_color_words(caption: str, vocabulary: Sequence[str] = COLOR_WORDS) -> list[tuple[int, int, str]]:
    """Colour-word occurrences of ``caption`` as ``(start, end, word)`` character spans, in order; whole words,
    case-insensitive (``word`` is the text as written in the caption)."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a str, got {type(caption).__name__}.")
    pattern = _DEFAULT_PATTERN if vocabulary is COLOR_WORDS else _pattern(vocabulary)
    return [(m.start(), m.end(), m.group(0)) for m in pattern.finditer(caption)]


def count_color_words(caption: str, vocabulary: Sequence[str] = COLOR_WORDS) -> int:
    """Number of colour-word occurrences in ``caption``."""
    return len(find_color_words(caption, vocabulary))


def replacement_colors(word: str, vocabulary: Sequence[str] = COLOR_WORDS) -> list[str]:
    """The colour words that may replace ``word``: the vocabulary (lower case, in its order) minus ``word`` and its
    other spellings (grey/gray, gold/golden)."""
    lower = word.lower()
    excluded = {lower}
    for group in _SAME_COLOR:
        if lower in group:
            excluded |= group
    seen: dict[str, None] = {}
    for candidate in vocabulary:
        if candidate.lower() not in excluded:
            seen.setdefault(candidate.lower(), None)
    return list(seen)


def _match_case(new: str, template: str) -> str:
    # Keep the caption's casing: "Yellow petals" -> "Red petals", "YELLOW" -> "RED".
    if template.isupper() and len(template) > 1:
        return new.upper()
    if template[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def swap_color_words(
    caption: str,
    num_slots: int,
    degree: int,
    rng: np.random.Generator,
    *,
    vocabulary: Sequence[str] = COLOR_WORDS,
) -> ColorSwap:
    """Keep ``degree`` of the first ``num_slots`` colour words of ``caption`` and replace the other
    ``num_slots - degree`` (chosen at random) by a different random colour word; text outside the replaced words is
    unchanged, as are colour words after the slots.

    Raises ``ValueError`` when ``caption`` has fewer than ``num_slots`` colour words or ``degree`` is not in
    ``0..num_slots``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}."
        )
    if isinstance(num_slots, bool) or not isinstance(num_slots, (int, np.integer)) or num_slots < 1:
        raise ValueError(f"num_slots={num_slots!r}: expected an integer >= 1 (the number of colour-word slots).")
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 <= degree <= num_slots:
        raise ValueError(f"degree={degree!r}: expected an integer in 0..num_slots={num_slots} (slots left unchanged).")
    spans = find_color_words(caption, vocabulary)
    if len(spans) < num_slots:
        raise ValueError(
            f"caption {caption!r} has {len(spans)} colour word(s) {[w for _, _, w in spans]}, fewer than "
            f"num_slots={num_slots}; pick captions with count_color_words(caption) >= num_slots or lower num_slots."
        )
    slots = spans[:num_slots]
    replaced = set(rng.choice(num_slots, size=num_slots - degree, replace=False).tolist())
    pieces, position = [], 0
    changed, before, after = [], [], []
    for i, (start, end, word) in enumerate(slots):
        new = word
        if i in replaced:
            candidates = replacement_colors(word, vocabulary)
            new = _match_case(candidates[int(rng.integers(len(candidates)))], word)
        pieces += [caption[position:start], new]
        position = end
        changed.append(i in replaced)
        before.append(word)
        after.append(new)
    pieces.append(caption[position:])
    return ColorSwap("".join(pieces), changed, before, after)


def degree_rows(
    examples: Iterable[Mapping],
    num_slots: int,
    seed: int,
    *,
    vocabulary: Sequence[str] = COLOR_WORDS,
) -> list[dict]:
    """The Degree set of ``examples`` (dicts with ``image``, ``captions`` and ``image_id``, as the readers of
    :mod:`mmquant.data.caption_folders` give them).

    For each example, its first caption with at least ``num_slots`` colour words gives ``num_slots + 1`` rows, one per
    degree ``num_slots..0``: ``{"image", "caption", "original_caption", "degree", "num_slots", "changed",
    "image_id"}``. Examples without such a caption are left out (by definition they have no Degree rows; the count is
    logged). Deterministic given ``seed``: each example draws from its own generator seeded with ``(seed,
    crc32(image_id))``, so its rows do not depend on which other examples are present or on their order.
    """
    if isinstance(num_slots, bool) or not isinstance(num_slots, (int, np.integer)) or num_slots < 1:
        raise ValueError(f"num_slots={num_slots!r}: expected an integer >= 1.")
    rows, total = [], 0
    for example in examples:
        total += 1
        caption = next((c for c in example["captions"] if count_color_words(c, vocabulary) >= num_slots), None)
        if caption is None:
            continue
        image_id = str(example["image_id"])
        rng = np.random.default_rng([int(seed), zlib.crc32(image_id.encode("utf-8"))])
        for degree in range(num_slots, -1, -1):
            swap = swap_color_words(caption, num_slots, degree, rng, vocabulary=vocabulary)
            rows.append(
                {
                    "image": example["image"],
                    "caption": swap.caption,
                    "original_caption": caption,
                    "degree": degree,
                    "num_slots": num_slots,
                    "changed": swap.changed,
                    "image_id": image_id,
                }
            )
    kept = len(rows) // (num_slots + 1)
    if kept == 0:
        raise ValueError(
            f"None of the {total} examples has a caption with at least num_slots={num_slots} colour words; "
            "lower num_slots."
        )
    logger.info(
        "Degree set: %d of %d images have a caption with >= %d colour words (the others are left out).",
        kept,
        total,
        num_slots,
    )
    return rows
