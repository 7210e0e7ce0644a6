"""Multi-head quantization (MoVQ, Zheng et al. arXiv:2209.09002; OptVQ Sec. 3.3 "Multi-head Quantizer").

A feature of ``dim`` channels is split into ``num_heads`` segments of ``dim // num_heads`` channels, each quantized
independently with one shared codebook and concatenated back, so each feature is represented by ``num_heads``
tokens and the equivalent codebook size is ``K ** num_heads``. The split follows the reference code: consecutive
channels form a head.
"""

from torch import Tensor

__all__ = ["merge_heads", "split_heads"]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(..., dim)`` -> ``(..., num_heads, dim // num_heads)``."""
    return x.unflatten(-1, (num_heads, x.shape[-1] // num_heads))


def merge_heads(x: Tensor) -> Tensor:
    """``(..., num_heads, head_dim)`` -> ``(..., num_heads * head_dim)``."""
    return x.flatten(-2)
