"""``build_quantizer(type, **kwargs)``: how models build their quantizer from ``config.quantizer_config``."""

from __future__ import annotations

from torch import nn

__all__ = ["QUANTIZER_TYPES", "build_quantizer", "quantizer_class"]

QUANTIZER_TYPES = ("vq", "sinkhorn", "residual")


def quantizer_class(type: str) -> type[nn.Module]:
    """The quantizer class of ``type`` (``"vq"``, ``"sinkhorn"``/``"optvq"`` or ``"residual"``)."""
    from .residual import ResidualQuantizer
    from .sinkhorn_quantizer import SinkhornQuantizer
    from .vector_quantizer import VectorQuantizer

    classes = {
        "vq": VectorQuantizer,
        "sinkhorn": SinkhornQuantizer,
        "optvq": SinkhornQuantizer,
        "residual": ResidualQuantizer,
    }
    if type not in classes:
        raise ValueError(f"quantizer type {type!r} is unknown; expected one of {sorted(classes)}.")
    return classes[type]


def build_quantizer(type: str, **kwargs) -> nn.Module:
    """Build a quantizer by name: ``"vq"`` (nearest neighbour), ``"sinkhorn"`` (OptVQ; alias ``"optvq"``) or
    ``"residual"`` (stages of either). ``kwargs`` are the quantizer's constructor arguments."""
    cls = quantizer_class(type)
    try:
        return cls(**kwargs)
    except TypeError as err:  # an unexpected keyword: name it and the quantizer
        raise ValueError(f"quantizer type {type!r}: {err}. Check the keys of quantizer_config.") from err
