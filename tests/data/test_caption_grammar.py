"""The Caption MNIST caption language: every rendered caption parses back to its objects, with any wording, case
and tokenizer spacing; anything outside the grammar is an error that quotes the clause."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mmquant.data.caption_grammar import (
    CENTER,
    QUAD_TEMPLATES,
    QUADRANTS,
    SINGLE_TEMPLATES,
    CaptionObject,
    CaptionParseError,
    PhraseStyle,
    caption_vocabulary,
    parse_caption,
    render_caption,
)
from mmquant.data.caption_mnist import DEFAULT_COLORS

PAPER_EXAMPLES = {
    "This is white 7.": [(7, "white", CENTER)],
    "The 6 on the lower right is blue.": [(6, "blue", "lower right")],
    "The green 0 is on the upper right, and the top left 8 is red.": [
        (0, "green", "upper right"),
        (8, "red", "upper left"),
    ],
    "the lower left 4 is blue, the red 0 is on the lower right, and the 2 on the top right is green.": [
        (4, "blue", "lower left"),
        (0, "red", "lower right"),
        (2, "green", "upper right"),
    ],
    "The bottom left 1 is blue, the upper right 7 is white, the bottom right 0 is red, and the upper left 3 "
    "is green.": [
        (1, "blue", "lower left"),
        (7, "white", "upper right"),
        (0, "red", "lower right"),
        (3, "green", "upper left"),
    ],
}


@pytest.mark.parametrize("caption", list(PAPER_EXAMPLES))
def test_the_papers_examples_parse(caption):
    assert parse_caption(caption, DEFAULT_COLORS) == [CaptionObject(d, c, p) for d, c, p in PAPER_EXAMPLES[caption]]


def test_every_template_and_synonym_round_trips():
    rng = np.random.default_rng(0)
    for k in range(1, 5):
        for templates in itertools.product(range(len(QUAD_TEMPLATES)), repeat=k):
            positions = [QUADRANTS[q] for q in rng.permutation(4)[:k]]
            objects = [CaptionObject(int(rng.integers(10)), str(rng.choice(DEFAULT_COLORS)), p) for p in positions]
            styles = [PhraseStyle(t, int(rng.integers(2))) for t in templates]
            caption = render_caption(objects, styles)
            assert caption[0].isupper() and caption.endswith(".")
            assert parse_caption(caption, DEFAULT_COLORS) == objects
            # as a word-level tokenizer decodes it: lower case, spaces before punctuation
            spaced = caption.lower().replace(",", " ,").replace(".", " .")
            assert parse_caption(spaced, DEFAULT_COLORS) == objects
    for template in range(len(SINGLE_TEMPLATES)):
        obj = [CaptionObject(3, "red", CENTER)]
        assert parse_caption(render_caption(obj, [PhraseStyle(template)]), DEFAULT_COLORS) == obj


def test_vocabulary_covers_every_rendered_word():
    vocab = set(caption_vocabulary(DEFAULT_COLORS))
    objects = [CaptionObject(d, c, p) for d, c, p in zip(range(4), DEFAULT_COLORS, QUADRANTS)]
    for t in range(len(QUAD_TEMPLATES)):
        for synonym in (0, 1):
            caption = render_caption(objects, [PhraseStyle(t, synonym)] * 4).lower()
            words = caption.replace(",", " , ").replace(".", " . ").split()
            assert set(words) <= vocab


@pytest.mark.parametrize(
    ("caption", "message"),
    [
        ("The 6 is purple.", "the 6 is purple"),  # unknown colour
        ("The 6 on the lower right is blue", "ending with '.'"),
        ("The 6 on the lower right is blue, and the 5 on the bottom right is red.", "same quadrant"),
        ("This is white 7, and the 6 on the lower right is blue.", "alone"),
        ("The 6 on the middle right is blue.", "middle right"),
        ("The 66 on the lower right is blue.", "66"),
        ("", "ending"),
    ],
)
def test_bad_captions_raise(caption, message):
    with pytest.raises(CaptionParseError, match=message):
        parse_caption(caption, DEFAULT_COLORS)


def test_render_checks_its_arguments():
    with pytest.raises(ValueError, match="styles"):
        render_caption([CaptionObject(1, "red", "upper left")], [])
    with pytest.raises(ValueError, match="position='middle'"):
        render_caption([CaptionObject(1, "red", "middle")], [PhraseStyle()])
    with pytest.raises(ValueError, match="objects"):
        render_caption([], [])
    with pytest.raises(TypeError, match="text"):
        parse_caption(None, DEFAULT_COLORS)
