"""Adapters that plug vector-quantize-pytorch (lucidrains, github.com/lucidrains/vector-quantize-pytorch) quantizers
into mmquant models behind mmquant's quantizer interface, for the benchmarks only: the library never imports
vector-quantize-pytorch (``pip install "mmquant[bench]"`` installs it)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmquant.quantizers import QuantizerOutput
from mmquant.quantizers.functional import code_usage_and_perplexity

# FSQ's level sets, "Finite Scalar Quantization: VQ-VAE Made Simple" (Mentzer et al., arXiv:2309.15505), Table 1,
# keyed by the codebook size they stand in for. 2^13 is not in the table: (8, 8, 5, 5, 5) = 8,000 codes follows the
# paper's rule (every L_i >= 5), as (8, 5, 5, 5) = 1,000 does for 2^10.
FSQ_LEVELS = {
    2**8: (8, 6, 5),
    2**10: (8, 5, 5, 5),
    2**12: (7, 5, 5, 5, 5),
    2**13: (8, 8, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


def fsq_levels(codebook_size: int) -> tuple[int, ...]:
    """The FSQ level set for the size nearest ``codebook_size`` (in log2); its product is the codebook size used."""
    if not isinstance(codebook_size, int) or codebook_size < 2:
        raise ValueError(f"codebook_size={codebook_size!r}: expected an integer >= 2.")
    return FSQ_LEVELS[min(FSQ_LEVELS, key=lambda k: (abs(math.log2(k) - math.log2(codebook_size)), k))]


def lfq_codebook_size(codebook_size: int) -> int:
    """LFQ's codebook is 2^bits: the power of two nearest ``codebook_size`` (in log2)."""
    if not isinstance(codebook_size, int) or codebook_size < 2:
        raise ValueError(f"codebook_size={codebook_size!r}: expected an integer >= 2.")
    return 2 ** round(math.log2(codebook_size))


class PeerQuantizer(nn.Module):
    """Wraps a vector-quantize-pytorch ``VectorQuantize``, ``ResidualVQ``, ``LFQ`` or ``FSQ``: ``(..., dim)`` ->
    :class:`QuantizerOutput` (indices ``(...)``, ``(..., heads)`` or ``(..., stages)``)."""

    def __init__(self, peer: nn.Module, codebook_size: int, kind: str):
        super().__init__()
        self.peer, self.codebook_size, self.kind = peer, codebook_size, kind

    def forward(self, x: Tensor) -> QuantizerOutput:
        lead, dim = x.shape[:-1], x.shape[-1]
        flat = x.reshape(len(x), -1, dim)  # (B, N, dim)
        if self.kind == "fsq":  # no loss: FSQ has no codebook to learn
            quantized, indices = self.peer(flat)
            loss = flat.new_zeros(())
        else:  # VectorQuantize / ResidualVQ (commitment losses), LFQ (entropy loss)
            quantized, indices, loss = self.peer(flat)
            loss = loss.sum()
        indices = indices.reshape(*lead, *indices.shape[2:])  # (..., ), (..., heads) or (..., stages)
        counts = torch.bincount(indices.reshape(-1).long(), minlength=self.codebook_size)
        usage, perplexity = code_usage_and_perplexity(counts)
        zero = flat.new_zeros(())
        return QuantizerOutput(quantized.reshape(x.shape), indices, loss, zero, loss.detach(), usage, perplexity)


# EMA (its default decay 0.8), k-means init, dead-code restart, as its README documents them; the rotation trick
# (on by default in recent versions) is set explicitly
_STRONGEST = dict(kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2, rotation_trick=False)


def build_peer(name: str, dim: int, codebook_size: int = 1024) -> tuple[nn.Module, int]:
    """A named peer quantizer for features of size ``dim`` and its number of codes: ``codebook_size`` for the
    ``VectorQuantize`` peers, the nearest FSQ level set (:data:`FSQ_LEVELS`) or LFQ power of two otherwise."""
    from vector_quantize_pytorch import FSQ, LFQ, VectorQuantize

    k = codebook_size
    if name == "vqp_ema_defaults":
        return PeerQuantizer(VectorQuantize(dim=dim, codebook_size=k, rotation_trick=False), k, "vq"), k
    if name == "vqp_ema_kmeans_dead":
        return PeerQuantizer(VectorQuantize(dim=dim, codebook_size=k, **_STRONGEST), k, "vq"), k
    if name == "vqp_ema_kmeans_dead_rotation":
        peer = VectorQuantize(dim=dim, codebook_size=k, **(_STRONGEST | {"rotation_trick": True}))
        return PeerQuantizer(peer, k, "vq"), k
    if name == "vqp_ema_kmeans_dead_4heads":
        peer = VectorQuantize(dim=dim, codebook_size=k, heads=4, separate_codebook_per_head=False, **_STRONGEST)
        return PeerQuantizer(peer, k, "vq"), k
    if name == "vqp_fsq":
        levels = list(fsq_levels(k))
        size = math.prod(levels)
        return PeerQuantizer(FSQ(levels=levels, dim=dim), size, "fsq"), size
    if name == "vqp_lfq":  # the losses of its README: entropy loss weight 0.1, diversity gamma 1
        size = lfq_codebook_size(k)
        peer = LFQ(dim=dim, codebook_size=size, entropy_loss_weight=0.1, diversity_gamma=1.0)
        return PeerQuantizer(peer, size, "lfq"), size
    raise ValueError(f"peer quantizer {name!r}: unknown; expected one of {PEERS}.")


def build_residual_peer(name: str, dim: int, codebook_size: int, num_stages: int) -> tuple[nn.Module, int]:
    """A named residual peer: ``ResidualVQ`` with ``num_stages`` stages of ``codebook_size`` codes each."""
    from vector_quantize_pytorch import ResidualVQ

    if name == "vqp_rvq_ema_kmeans_dead":  # every stage with the strongest VectorQuantize settings above
        peer = ResidualVQ(dim=dim, num_quantizers=num_stages, codebook_size=codebook_size, **_STRONGEST)
        return PeerQuantizer(peer, codebook_size, "rvq"), codebook_size
    raise ValueError(f"residual peer quantizer {name!r}: unknown; expected one of {RESIDUAL_PEERS}.")


PEERS = (
    "vqp_ema_defaults",
    "vqp_ema_kmeans_dead",
    "vqp_ema_kmeans_dead_rotation",
    "vqp_ema_kmeans_dead_4heads",
    "vqp_fsq",
    "vqp_lfq",
)
RESIDUAL_PEERS = ("vqp_rvq_ema_kmeans_dead",)
