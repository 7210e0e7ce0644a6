"""``datasets.Features`` shared by mmquant's evaluate modules (datasets is imported on call)."""

from __future__ import annotations

__all__ = ["image_pair_features"]


def image_pair_features() -> list:
    """Predictions and references as images: nested float lists ``(C, H, W)``, or ``(H, W)`` for one channel."""
    import datasets

    value = datasets.Value("float32")
    chw = datasets.Sequence(datasets.Sequence(datasets.Sequence(value)))
    hw = datasets.Sequence(datasets.Sequence(value))
    return [
        datasets.Features({"predictions": chw, "references": chw}),
        datasets.Features({"predictions": hw, "references": hw}),
    ]
