"""Quantizers with one interface: nearest neighbour (VQ), optimal transport (OptVQ Sinkhorn), residual stacks."""

from .base import BaseQuantizer, QuantizerOutput
from .factory import QUANTIZER_TYPES, build_quantizer
from .functional import code_usage_and_perplexity, nearest_code
from .residual import ResidualQuantizer
from .sinkhorn import sinkhorn
from .sinkhorn_kernel import sinkhorn_assign, sinkhorn_plan
from .sinkhorn_quantizer import SinkhornQuantizer
from .usage import CodebookUsage
from .vector_quantizer import VectorQuantizer

__all__ = [
    "QUANTIZER_TYPES",
    "BaseQuantizer",
    "CodebookUsage",
    "QuantizerOutput",
    "ResidualQuantizer",
    "SinkhornQuantizer",
    "VectorQuantizer",
    "build_quantizer",
    "code_usage_and_perplexity",
    "nearest_code",
    "sinkhorn",
    "sinkhorn_assign",
    "sinkhorn_plan",
]
