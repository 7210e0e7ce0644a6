"""The one quantizer interface of mmquant (DESIGN.md convention 2), and the codebook machinery all quantizers share.

A quantizer maps features ``(..., dim)`` to code vectors from a learned codebook. ``forward`` returns a
:class:`QuantizerOutput`; ``indices_to_codes`` decodes saved indices; in eval mode
``indices_to_codes(out.indices)`` equals ``out.quantized`` exactly. Subclasses only decide the assignment
(:meth:`BaseQuantizer.assign`): nearest neighbour (VQ-VAE, arXiv:1711.00937) or optimal transport (OptVQ,
arXiv:2412.15195). Everything else lives here once: the optional shared affine codebook transform (OptVQ Sec. 4.1,
after Huh et al. arXiv:2305.08842), multi-head splitting (MoVQ, OptVQ Sec. 3.3), the straight-through estimator
(eq. 2), codebook and commitment losses (eq. 4), EMA codebook updates, k-means initialisation, dead-code restart,
padding masks, usage and perplexity, and float32 computation under autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..limits import MAX_CONFIG_SIZE
from .functional import (
    check_features,
    check_index_range,
    code_usage_and_perplexity,
    is_distributed,
    nearest_code,
    rotation_trick,
    straight_through,
    vq_losses,
)
from .multi_head import merge_heads, split_heads

__all__ = ["BaseQuantizer", "QuantizerOutput"]


@dataclass
class QuantizerOutput:
    """Output of every quantizer.

    Args:
        quantized: ``(..., dim)`` code vectors with a straight-through gradient to the input (eq. 2), in the
            input's dtype.
        indices: ``(...)`` int64 code indices, or ``(..., num_heads)`` when ``num_heads > 1``.
        loss: scalar, ``codebook_loss + beta * commitment_loss`` (eq. 4).
        codebook_loss: scalar ``||sg(z) - e||^2`` (zero with EMA updates, where the codebook is not learned by
            gradient).
        commitment_loss: scalar ``||z - sg(e)||^2``.
        usage: scalar, fraction of the codebook used by this batch.
        perplexity: scalar, ``exp`` of the entropy of this batch's code histogram.
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    usage: Tensor
    perplexity: Tensor

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))


class BaseQuantizer(nn.Module):
    """Shared codebook machinery; subclasses implement :meth:`assign`.

    Args:
        dim: feature dimension of the input ``(..., dim)``.
        codebook_size: number of codes K.
        num_heads: split each feature into this many heads of ``dim // num_heads`` channels, each quantized with
            the one shared codebook (MoVQ multi-head; OptVQ Sec. 3.3). ``1`` is the plain one-head quantizer.
        beta: weight of the commitment loss (eq. 4).
        use_affine: learn a shared affine transform ``e_k = W c_k + b`` of the codebook (OptVQ Sec. 4.1).
        ema_decay: when set (e.g. 0.99), the codebook is updated by exponential moving averages of the assigned
            features instead of by gradient (VQ-VAE appendix); incompatible with ``use_affine``.
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations for ``kmeans_init``.
        dead_code_threshold: in training, codes whose moving-average count per batch falls below this are
            restarted on random features of the batch (0 disables).
        usage_decay: decay of the moving-average code counts used by ``dead_code_threshold``.
        rotation_trick: in training, pass gradients to the features by the rotation trick (Fifty et al. 2025,
            arXiv:2410.06424) instead of the identity straight-through estimator; the forward value is the same.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        num_heads: int = 1,
        beta: float = 0.25,
        use_affine: bool = False,
        ema_decay: float | None = None,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        usage_decay: float = 0.99,
        rotation_trick: bool = False,
    ):
        super().__init__()
        if not _is_int(dim) or dim < 1:
            raise ValueError(f"dim={dim!r}: expected a positive integer (the feature size).")
        if not _is_int(codebook_size) or codebook_size < 1:
            raise ValueError(f"codebook_size={codebook_size!r}: expected a positive integer.")
        for name, value in (("dim", dim), ("codebook_size", codebook_size)):
            if value > MAX_CONFIG_SIZE:  # refused before the (codebook_size, dim) table is allocated
                raise ValueError(f"{name}={value!r}: larger than MAX_CONFIG_SIZE={MAX_CONFIG_SIZE} (mmquant.limits).")
        if not _is_int(num_heads) or num_heads < 1 or dim % num_heads:
            raise ValueError(f"num_heads={num_heads!r}: expected a positive divisor of dim={dim}.")
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta={beta!r}: expected a finite number >= 0 (the commitment weight).")
        if not _is_int(kmeans_iters) or kmeans_iters < 1:
            raise ValueError(f"kmeans_iters={kmeans_iters!r}: expected an integer >= 1.")
        if not 0.0 <= usage_decay < 1.0:
            raise ValueError(f"usage_decay={usage_decay!r}: expected a float in [0, 1).")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay={ema_decay!r}: expected None or a float in (0, 1).")
        if ema_decay is not None and use_affine:
            raise ValueError("ema_decay with use_affine=True: EMA updates set the codes directly; pick one of them.")
        if not dead_code_threshold >= 0:
            raise ValueError(f"dead_code_threshold={dead_code_threshold!r}: expected >= 0 (0 disables restarts).")
        self.dim = dim
        self.codebook_size = codebook_size
        self.num_heads = num_heads
        self.codebook_dim = dim // num_heads
        self.beta = beta
        self.ema_decay = ema_decay
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        self.rotation_trick = rotation_trick

        self.embedding = nn.Embedding(codebook_size, self.codebook_dim)
        # nn.Embedding's N(0, 1) initialisation, as the reference code
        self.affine = nn.Linear(self.codebook_dim, self.codebook_dim) if use_affine else None
        if self.affine is not None:
            nn.init.normal_(self.affine.weight, std=self.codebook_dim**-0.5)  # as the reference's `proj`
        if ema_decay is not None:
            self.embedding.weight.requires_grad_(False)
            # Every code starts as the average of one pseudo-member (its initial vector): the codebook is exactly
            # embed_sum / cluster_size from the start, so a code that the first batches do not use keeps its vector
            # instead of being divided by a near-zero smoothed size (k-means initialisation overwrites both).
            self.register_buffer("ema_cluster_size", torch.ones(codebook_size))
            self.register_buffer("ema_embed_sum", self.embedding.weight.detach().clone())
        if dead_code_threshold > 0:
            self.register_buffer("code_count_avg", torch.full((codebook_size,), float(dead_code_threshold)))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self._initialized_seen = False  # a host-side copy of `initialized` once it is True (see _known_initialized)

    # ------------------------------------------------------------------ codebook
    @property
    def codebook(self) -> Tensor:
        """The effective code vectors ``(K, codebook_dim)`` in float32 (after the affine transform, if any)."""
        weight = self.embedding.weight.float()
        if self.affine is None:
            return weight
        return F.linear(weight, self.affine.weight.float(), self.affine.bias.float())

    @torch.no_grad()
    def _set_codes(self, index: Tensor, vectors: Tensor) -> None:
        """Make the effective codes ``index`` equal ``vectors`` (through the inverse affine map when there is one)."""
        if self.affine is not None:
            w, b = self.affine.weight.float(), self.affine.bias.float()
            vectors = torch.linalg.lstsq(w, (vectors - b).t()).solution.t()
        # through .data: a restart inside forward must not invalidate this step's autograd graph
        self.embedding.weight.data[index] = vectors.to(self.embedding.weight.dtype)
        if self.ema_decay is not None:
            # a (re)set code counts as holding at least one member, so the next EMA update does not blow it up
            self.ema_cluster_size[index] = self.ema_cluster_size[index].clamp(min=1.0)
            self.ema_embed_sum[index] = vectors * self.ema_cluster_size[index, None]

    # ------------------------------------------------------------------ assignment
    def assign(self, z: Tensor, codebook: Tensor) -> Tensor:
        """Code index for each row of ``z`` ``(N, codebook_dim)`` given ``codebook`` ``(K, codebook_dim)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward
    def _known_initialized(self) -> bool:
        """``initialized``, read from the device once it is True (it stays True until a state dict is loaded)."""
        if not self._initialized_seen:
            self._initialized_seen = bool(self.initialized)
        return self._initialized_seen

    def _load_from_state_dict(self, *args, **kwargs):
        self._initialized_seen = False  # the loaded flag is read again at the next training step
        super()._load_from_state_dict(*args, **kwargs)

    def _check_input(self, x: Tensor, mask: Tensor | None) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ValueError(
                f"x: expected a floating-point tensor (..., {self.dim}), got {type(x).__name__} "
                f"{getattr(x, 'dtype', '')}."
            )
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x: expected shape (..., {self.dim}) with the features last, got {tuple(x.shape)}.")
        check_features(x, "x", "check the encoder output (learning rate, mixed precision).")
        if mask is not None:
            if mask.dtype != torch.bool or mask.shape != x.shape[:-1]:
                raise ValueError(
                    f"mask: expected a bool tensor of shape {tuple(x.shape[:-1])} (True = real token), got "
                    f"{mask.dtype} {tuple(mask.shape)}."
                )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> QuantizerOutput:
        """Quantize ``x`` ``(..., dim)``.

        Args:
            x: features, channels last.
            mask: optional bool ``x.shape[:-1]``, True for real tokens. Padding tokens (False) take no part in
                the assignment's marginals, the losses, the statistics or the codebook updates; they still get
                their nearest code so that the output is defined everywhere.
        """
        self._check_input(x, mask)
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = split_heads(x.float(), self.num_heads)  # (..., heads, codebook_dim)
            flat = z.reshape(-1, self.codebook_dim)  # (N, codebook_dim), N = tokens * heads
            valid = None if mask is None else mask.unsqueeze(-1).expand(z.shape[:-1]).reshape(-1)
            if self.training and not self._known_initialized():
                self._kmeans_init(flat if valid is None else flat[valid])
            codebook = self.codebook  # (K, codebook_dim)

            if valid is None:
                indices = self.assign(flat, codebook)  # (N,)
            else:
                indices = torch.empty(flat.shape[0], dtype=torch.long, device=flat.device)
                indices[~valid] = nearest_code(flat.detach()[~valid], codebook.detach())
                indices[valid] = self.assign(flat[valid], codebook)
            codes = codebook.index_select(0, indices)  # (N, codebook_dim)

            weight = None if valid is None else valid.float()
            if self.ema_decay is None and weight is None and flat.numel():
                commitment_loss, codebook_loss = vq_losses(flat, codes)  # one pass for both values
            else:
                commitment_loss = _masked_mse(flat, codes.detach(), weight)
                if self.ema_decay is None:
                    codebook_loss = _masked_mse(codes, flat.detach(), weight)
                else:
                    codebook_loss = torch.zeros((), device=x.device)
            counts = _histogram(indices if valid is None else indices[valid], self.codebook_size)
            usage, perplexity = code_usage_and_perplexity(counts)
            if self.training:
                self._update_codebook(
                    flat.detach() if valid is None else flat.detach()[valid],
                    indices if valid is None else indices[valid],
                    counts,
                )

            # straight-through estimator (eq. 2), written so that the forward value is exactly the code vector
            if self.rotation_trick and self.training:
                quantized = rotation_trick(flat, codes)  # (N, codebook_dim), gradient rotated onto each code
            else:
                quantized = straight_through(flat, codes)  # (N, codebook_dim)
            quantized = merge_heads(quantized.view(z.shape)).to(x.dtype)  # (..., dim)
        indices = indices.view(z.shape[:-1])  # (..., heads)
        if self.num_heads == 1:
            indices = indices.squeeze(-1)  # (...)
        return QuantizerOutput(
            quantized=quantized,
            indices=indices,
            loss=codebook_loss + self.beta * commitment_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            usage=usage,
            perplexity=perplexity,
        )

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """Code vectors ``(..., dim)`` for ``indices`` ``(...)`` (or ``(..., num_heads)`` when multi-head)."""
        if not isinstance(indices, Tensor) or indices.dtype not in (
            torch.int32,
            torch.int64,
            torch.int16,
            torch.uint8,
        ):
            raise ValueError(
                f"indices: expected an integer tensor, got {type(indices).__name__} {getattr(indices, 'dtype', '')}."
            )
        if self.num_heads > 1:
            if indices.ndim < 1 or indices.shape[-1] != self.num_heads:
                raise ValueError(
                    f"indices: expected shape (..., {self.num_heads}) for a {self.num_heads}-head quantizer, "
                    f"got {tuple(indices.shape)}."
                )
        check_index_range(indices, self.codebook_size)
        heads = indices if self.num_heads > 1 else indices.unsqueeze(-1)  # (..., heads)
        codes = F.embedding(heads.long(), self.codebook)  # (..., heads, codebook_dim)
        return merge_heads(codes)

    # ------------------------------------------------------------------ codebook updates
    @torch.no_grad()
    def _kmeans_init(self, z: Tensor) -> None:
        """k-means on the first batch's features (random distinct rows, then Lloyd iterations)."""
        total = torch.tensor(float(z.shape[0]), device=z.device)
        if is_distributed():
            dist.all_reduce(total)  # every process takes the same branch below
        if total == 0:
            return  # nothing to fit yet: try again on the next batch
        if z.shape[0] == 0:  # this process has only padding: it receives rank 0's centers below
            centers = self.codebook.detach().clone()
        else:
            pick = torch.randint(0, z.shape[0], (self.codebook_size,), device=z.device)
            if z.shape[0] >= self.codebook_size:
                pick = torch.randperm(z.shape[0], device=z.device)[: self.codebook_size]
            centers = z[pick].clone()
        for _ in range(self.kmeans_iters if z.shape[0] else 0):
            assign = nearest_code(z, centers)
            sums = torch.zeros_like(centers).index_add_(0, assign, z)
            counts = torch.bincount(assign, minlength=self.codebook_size).float()
            centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
        _broadcast(centers)
        self._set_codes(torch.arange(self.codebook_size, device=z.device), centers)
        if self.ema_decay is not None:
            counts = torch.bincount(nearest_code(z, centers), minlength=self.codebook_size).float()
            if is_distributed():
                dist.all_reduce(counts)
            self.ema_cluster_size.copy_(counts)
            self.ema_embed_sum.copy_(centers * counts[:, None].clamp(min=1e-5))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_codebook(self, z: Tensor, indices: Tensor, counts: Tensor) -> None:
        counts = counts.float()
        if self.ema_decay is not None or self.dead_code_threshold > 0:
            if is_distributed():
                counts = counts.clone()
                dist.all_reduce(counts)
        if self.ema_decay is not None:
            sums = torch.zeros(self.codebook_size, self.codebook_dim, device=z.device).index_add_(0, indices, z)
            if is_distributed():
                dist.all_reduce(sums)
            # a batch without real tokens (empty, or all padding) carries no statistics: the averages stay as they
            # are rather than decaying towards zero (the counts are global, so every process skips alike)
            if bool(counts.sum() > 0):
                self.ema_cluster_size.lerp_(counts, 1 - self.ema_decay)
                self.ema_embed_sum.lerp_(sums, 1 - self.ema_decay)
                n = self.ema_cluster_size.sum()
                # Laplace smoothing of the cluster sizes (VQ-VAE appendix), floored so a code whose members all
                # left long ago is divided by a small number, never by ~0
                size = (self.ema_cluster_size + 1e-5) / (n + self.codebook_size * 1e-5) * n
                self.embedding.weight.data.copy_(self.ema_embed_sum / size.clamp(min=1e-5)[:, None])
        if self.dead_code_threshold > 0:
            self.code_count_avg.lerp_(counts, 1 - self.usage_decay)
            dead = self.code_count_avg < self.dead_code_threshold
            if bool(dead.any()):  # the same on every process: the counts were all-reduced
                dead_idx = dead.nonzero().squeeze(1)
                if z.shape[0] > 0:
                    picks = z[torch.randint(0, z.shape[0], (dead_idx.numel(),), device=z.device)]
                else:  # no real token here: keep the codes (rank 0's picks arrive by broadcast)
                    picks = self.codebook[dead_idx].detach().clone()
                _broadcast(picks)
                self._set_codes(dead_idx, picks)
                self.code_count_avg[dead_idx] = float(self.dead_code_threshold)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _histogram(indices: Tensor, size: int) -> Tensor:
    """``torch.bincount(indices, minlength=size)``, on GPU without its host sync (it reads ``indices.max()``)."""
    if indices.device.type == "cpu":
        return torch.bincount(indices, minlength=size)
    return torch.zeros(size, dtype=torch.long, device=indices.device).scatter_add_(
        0, indices, torch.ones_like(indices)
    )


def _masked_mse(a: Tensor, b: Tensor, weight: Tensor | None) -> Tensor:
    """Mean squared error over rows, counting only rows with weight 1; zero for no rows (an empty batch)."""
    if weight is None:
        return F.mse_loss(a, b) if a.numel() else a.new_zeros(())
    per_row = (a - b).pow(2).mean(-1)
    return (per_row * weight).sum() / weight.sum().clamp(min=1)


def _broadcast(t: Tensor) -> None:
    """Make every process hold rank 0's ``t`` (codebook re-initialisations must agree across processes)."""
    if is_distributed():
        dist.broadcast(t, src=0)
