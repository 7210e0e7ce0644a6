"""The language of Caption MNIST captions (MXQ-VAE, "Dataset"): render a scene's objects as a caption through
several templates and synonyms, and parse a caption back into objects.

    Single:  "This is white 7."
    Quad1:   "The 6 on the lower right is blue."
    Quad2:   "The green 0 is on the upper right, and the top left 8 is red."
    Quad4:   "The bottom left 1 is blue, the upper right 7 is white, the bottom right 0 is red, and the upper left 3
              is green."

Positions are the four quadrants, named canonically ``"upper left"``, ``"upper right"``, ``"lower left"``,
``"lower right"`` and rendered with the synonyms upper/top and lower/bottom; a single digit alone on the canvas has
the position ``"center"`` and is never named in its caption. The parser accepts what the renderer writes, in any
case and with the spacing a word-level tokenizer's ``decode`` gives (``"the 6 on the lower right is blue ."``), so
generated captions can be judged against the scene they claim to describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CENTER",
    "QUADRANTS",
    "CaptionObject",
    "CaptionParseError",
    "PhraseStyle",
    "caption_vocabulary",
    "parse_caption",
    "place_labels",
    "render_caption",
]

QUADRANTS = ("upper left", "upper right", "lower left", "lower right")  # slot order of the structured ground truth
CENTER = "center"
_VERTICAL_SYNONYMS = {"upper": ("upper", "top"), "lower": ("lower", "bottom")}
_VERTICAL_CANONICAL = {word: canon for canon, words in _VERTICAL_SYNONYMS.items() for word in words}

# Clause templates for a digit in a quadrant ({p} is the rendered position) and for a digit alone.
QUAD_TEMPLATES = (
    "the {d} on the {p} is {c}",  # "The 6 on the lower right is blue."
    "the {c} {d} is on the {p}",  # "The green 0 is on the upper right"
    "the {p} {d} is {c}",  # "the top left 8 is red"
    "there is a {c} {d} on the {p}",
)
SINGLE_TEMPLATES = (
    "this is {c} {d}",  # "This is white 7."
    "this is a {c} {d}",
    "the {d} is {c}",
    "a {c} {d}",
)


class CaptionParseError(ValueError):
    """A caption that the Caption MNIST grammar cannot read."""


@dataclass(frozen=True)
class CaptionObject:
    """One described digit: its value 0-9, colour word and position (a quadrant of ``QUADRANTS`` or ``CENTER``)."""

    digit: int
    color: str
    position: str


@dataclass(frozen=True)
class PhraseStyle:
    """How one object is worded: the clause template index and the vertical synonym (0: upper/lower, 1: top/bottom)."""

    template: int = 0
    synonym: int = 0


def _position_words(position: str, synonym: int) -> str:
    vertical, horizontal = position.split()
    return f"{_VERTICAL_SYNONYMS[vertical][synonym]} {horizontal}"


def _join(clauses: list[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) == 2:
        return f"{clauses[0]}, and {clauses[1]}"
    return ", ".join(clauses[:-1]) + f", and {clauses[-1]}"


def render_caption(objects: list[CaptionObject], styles: list[PhraseStyle]) -> str:
    """The caption describing ``objects`` in the given order, each worded by its ``PhraseStyle``."""
    if not objects:
        raise ValueError("objects: a caption needs at least one object.")
    if len(styles) != len(objects):
        raise ValueError(f"styles: expected one PhraseStyle per object ({len(objects)}), got {len(styles)}.")
    clauses = []
    for obj, style in zip(objects, styles):
        if obj.position == CENTER:
            if len(objects) != 1:
                raise ValueError("objects: a 'center' object must be alone on the canvas.")
            template = SINGLE_TEMPLATES[style.template % len(SINGLE_TEMPLATES)]
            clauses.append(template.format(d=obj.digit, c=obj.color))
        else:
            if obj.position not in QUADRANTS:
                raise ValueError(f"position={obj.position!r}: expected one of {QUADRANTS} or {CENTER!r}.")
            template = QUAD_TEMPLATES[style.template % len(QUAD_TEMPLATES)]
            clauses.append(template.format(d=obj.digit, c=obj.color, p=_position_words(obj.position, style.synonym)))
    text = _join(clauses) + "."
    return text[0].upper() + text[1:]


def caption_vocabulary(colors: tuple[str, ...] | list[str]) -> list[str]:
    """Every word (and punctuation mark) a rendered caption can contain, for building a closed tokenizer vocabulary."""
    words = {str(d) for d in range(10)} | set(colors) | {",", "."}
    words |= {w for synonyms in _VERTICAL_SYNONYMS.values() for w in synonyms} | {"left", "right"}
    for template in QUAD_TEMPLATES + SINGLE_TEMPLATES:
        words |= {w for w in template.split() if not w.startswith("{")}
    words.add("and")
    return sorted(words)


def _clause_patterns(colors: tuple[str, ...]) -> list[tuple[re.Pattern, bool]]:
    color = "(?P<c>" + "|".join(re.escape(c) for c in sorted(colors, key=len, reverse=True)) + ")"
    vertical = "(?P<v>" + "|".join(_VERTICAL_CANONICAL) + ")"
    fields = {"d": r"(?P<d>[0-9])", "c": color, "p": vertical + r" (?P<h>left|right)"}
    patterns = []
    for templates, single in ((QUAD_TEMPLATES, False), (SINGLE_TEMPLATES, True)):
        for template in templates:
            regex = re.escape(template).replace(r"\{", "{").replace(r"\}", "}").replace(r"\ ", " ")
            patterns.append((re.compile("^" + regex.format(**fields) + "$"), single))
    return patterns


def parse_caption(text: str, colors: tuple[str, ...] | list[str]) -> list[CaptionObject]:
    """The objects a caption describes, in caption order; raises :class:`CaptionParseError` when any part of it is
    not in the grammar (unknown colour, two digits in one quadrant, a stray word)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a caption string, got {type(text).__name__}.")
    normalized = re.sub(r"\s+", " ", text.strip().lower())
    normalized = re.sub(r"\s*([.,])", r"\1", normalized)  # "blue ." -> "blue." (tokenizer-decoded spacing)
    if not normalized.endswith("."):
        raise CaptionParseError(f"caption {text!r}: expected a sentence ending with '.'.")
    body = normalized[:-1].strip()
    clauses = [c.strip() for c in re.split(r",(?: and)? ?| and ", body)]
    patterns = _clause_patterns(tuple(colors))
    objects: list[CaptionObject] = []
    for clause in clauses:
        found = next(((m, single) for pattern, single in patterns if (m := pattern.match(clause))), None)
        if found is None:
            raise CaptionParseError(f"caption {text!r}: cannot read the clause {clause!r}.")
        match, is_single = found
        if is_single:
            position = CENTER
        else:
            position = f"{_VERTICAL_CANONICAL[match['v']]} {match['h']}"
        objects.append(CaptionObject(digit=int(match["d"]), color=match["c"], position=position))
    positions = [o.position for o in objects]
    if CENTER in positions and len(objects) > 1:
        raise CaptionParseError(f"caption {text!r}: a digit alone on the canvas cannot share it with others.")
    if len(set(positions)) != len(positions):
        raise CaptionParseError(f"caption {text!r}: two digits are placed in the same quadrant.")
    return objects


def place_labels(captions: list[str], colors: tuple[str, ...] | list[str]):
    """What each quadrant holds according to each caption, as ``(N, 2, 2, 2)`` int64 labels (rows, columns of the
    quadrants; then the digit + 1 and the colour's index in ``colors`` + 1, 0 for an empty quadrant): the targets of
    LAViTeR's auxiliary place classifier (``LaviterConfig.place_label_classes = [11, len(colors) + 1]``)."""
    import torch

    labels = torch.zeros(len(captions), 2, 2, 2, dtype=torch.long)
    for n, caption in enumerate(captions):
        for obj in parse_caption(caption, colors):
            if obj.position not in QUADRANTS:
                raise ValueError(
                    f"captions[{n}] = {caption!r}: a digit alone on the canvas has no quadrant; place labels are for "
                    "the Quad layouts."
                )
            row, col = divmod(QUADRANTS.index(obj.position), 2)
            labels[n, row, col] = torch.tensor([obj.digit + 1, list(colors).index(obj.color) + 1])
    return labels
