"""Generated Caption MNIST captions against the true ones, read by the caption grammar (no model involved): the
fraction of the true (digit, colour, position) objects a generated caption states, and of captions stating exactly
the true objects."""

from __future__ import annotations

from collections.abc import Sequence

from ..data.caption_grammar import CaptionParseError, parse_caption
from ..data.caption_mnist import DEFAULT_COLORS

__all__ = ["caption_accuracy"]


def caption_accuracy(
    generated: Sequence[str], truth: Sequence[str], colors: Sequence[str] = DEFAULT_COLORS
) -> tuple[float, float]:
    """Object accuracy (fraction of the true (digit, colour, position) objects that the generated caption states)
    and pair accuracy (fraction of captions stating exactly the true objects); a caption that does not parse states
    none.

    >>> truth = ["the upper left 3 is red, and the 5 on the lower right is blue."]
    >>> caption_accuracy(["The red 3 is on the upper left."], truth)
    (0.5, 0.0)
    """
    if len(generated) != len(truth):
        raise ValueError(f"generated, truth: expected as many captions, got {len(generated)} and {len(truth)}.")
    hits = total = exact = 0
    for text, true in zip(generated, truth):
        want = set(parse_caption(true, colors))
        try:
            got = set(parse_caption(text, colors))
        except CaptionParseError:
            got = set()
        hits += len(want & got)
        total += len(want)
        exact += got == want
    return hits / max(total, 1), exact / max(len(truth), 1)
