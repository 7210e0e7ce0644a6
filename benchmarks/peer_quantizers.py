"""Adapters that plug vector-quantize-pytorch (lucidrains, github.com/lucidrains/vector-quantize-pytorch) quantizers
into mmquant models behind mmquant's quantizer interface, for the benchmarks only: the library never imports
vector-quantize-pytorch (``pip install "mmquant[bench]"`` installs it)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmquant.quantizers import QuantizerOutput
from mmquant.quantizers.functional import code_usage_and_perplexity


class PeerQuantizer(nn.Module):
    """Wraps a vector-quantize-pytorch ``VectorQuantize`` or ``FSQ``: ``(..., dim)`` -> :class:`QuantizerOutput`."""

    def __init__(self, peer: nn.Module, codebook_size: int, kind: str):
        super().__init__()
        self.peer, self.codebook_size, self.kind = peer, codebook_size, kind

    def forward(self, x: Tensor) -> QuantizerOutput:
        lead, dim = x.shape[:-1], x.shape[-1]
        flat = x.reshape(len(x), -1, dim)  # (B, N, dim)
        if self.kind == "fsq":
            quantized, indices = self.peer(flat)
            loss = flat.new_zeros(())
        else:
            quantized, indices, loss = self.peer(flat)
            loss = loss.sum()
        indices = indices.reshape(*lead, *indices.shape[2:])  # (..., ) or (..., heads)
        counts = torch.bincount(indices.reshape(-1).long(), minlength=self.codebook_size)
        usage, perplexity = code_usage_and_perplexity(counts)
        zero = flat.new_zeros(())
        return QuantizerOutput(quantized.reshape(x.shape), indices, loss, zero, loss.detach(), usage, perplexity)


def build_peer(name: str, dim: int) -> tuple[nn.Module, int]:
    """A named peer quantizer for features of size ``dim`` and its number of codes."""
    from vector_quantize_pytorch import FSQ, VectorQuantize

    # EMA (its default decay 0.8), k-means init, dead-code restart, as its README documents them; the rotation trick
    # (on by default in recent versions) is set explicitly
    strongest = dict(kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2, rotation_trick=False)
    if name == "vqp_ema_defaults":
        return PeerQuantizer(VectorQuantize(dim=dim, codebook_size=1024, rotation_trick=False), 1024, "vq"), 1024
    if name == "vqp_ema_kmeans_dead":
        return PeerQuantizer(VectorQuantize(dim=dim, codebook_size=1024, **strongest), 1024, "vq"), 1024
    if name == "vqp_ema_kmeans_dead_rotation":
        peer = VectorQuantize(dim=dim, codebook_size=1024, **(strongest | {"rotation_trick": True}))
        return PeerQuantizer(peer, 1024, "vq"), 1024
    if name == "vqp_ema_kmeans_dead_4heads":
        peer = VectorQuantize(dim=dim, codebook_size=1024, heads=4, separate_codebook_per_head=False, **strongest)
        return PeerQuantizer(peer, 1024, "vq"), 1024
    if name == "vqp_fsq":
        levels = [8, 5, 5, 5]  # 1000 codes, the nearest FSQ size to 1024 (FSQ paper, Table 1)
        return PeerQuantizer(FSQ(levels=levels, dim=dim), 1000, "fsq"), 1000
    raise ValueError(f"peer quantizer {name!r}: unknown.")


PEERS = (
    "vqp_ema_defaults",
    "vqp_ema_kmeans_dead",
    "vqp_ema_kmeans_dead_rotation",
    "vqp_ema_kmeans_dead_4heads",
    "vqp_fsq",
)
