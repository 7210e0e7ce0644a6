"""Codebook usage over a whole evaluation set, not per batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from ..limits import MAX_CODEBOOK_SIZE, check_int
from .functional import check_index_range, is_distributed, usage_statistics

__all__ = ["CodebookUsage"]


class CodebookUsage:
    """Accumulates code counts over many batches; ``compute()`` gives whole-set usage and perplexity.

    Example:
    >>> import torch
    >>> from mmquant.quantizers import CodebookUsage
    >>> meter = CodebookUsage(codebook_size=4)
    >>> meter.update(torch.tensor([0, 1])); meter.update(torch.tensor([[1, 2]]))
    >>> meter.compute()["usage"]
    0.75
    """

    def __init__(self, codebook_size: int):
        if not isinstance(codebook_size, int) or isinstance(codebook_size, bool) or codebook_size < 1:
            raise ValueError(f"codebook_size={codebook_size!r}: expected a positive integer.")
        check_int(codebook_size, "codebook_size", 1, MAX_CODEBOOK_SIZE, "one count per code is kept")
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def reset(self) -> None:
        self.counts.zero_()

    def update(self, indices: Tensor, mask: Tensor | None = None) -> None:
        """Count ``indices`` (any shape); with ``mask`` (``indices.shape`` or its leading dims), only True tokens."""
        if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices: expected an integer tensor, got {getattr(indices, 'dtype', type(indices))}.")
        if mask is not None:
            if (
                not isinstance(mask, Tensor)
                or mask.dtype != torch.bool
                or tuple(mask.shape) != tuple(indices.shape[: mask.ndim])
            ):
                raise ValueError(
                    f"mask: expected a bool tensor of indices' shape {tuple(indices.shape)} or its leading dims, got "
                    f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}."
                )
            while mask.ndim < indices.ndim:
                mask = mask.unsqueeze(-1)
            indices = indices[mask.expand_as(indices)]
        flat = indices.reshape(-1).long().cpu()
        check_index_range(flat, self.codebook_size)
        self.counts += torch.bincount(flat, minlength=self.codebook_size)

    def compute(self, all_reduce: bool = False) -> dict:
        """``usage`` (fraction of codes used at least once), ``perplexity``, ``dead_codes`` and ``counts``.

        Args:
            all_reduce: sum the counts over all ``torch.distributed`` processes first. Every process must then call
                ``compute`` (it is a collective); leave it off when only one process evaluates.
        """
        counts = self.counts.clone()
        if all_reduce and is_distributed():
            counts = counts.to("cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(counts)
            counts = counts.cpu()
        return {**usage_statistics(counts), "counts": counts}
