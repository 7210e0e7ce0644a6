"""Losses over the global batch when a model trains in several ``torch.distributed`` processes (data parallelism):
each process holds a contiguous share of the rows, and a loss that couples the rows (in-batch negatives) or averages
over a varying number of items (caption tokens) would otherwise see only its share. Both helpers are the identity
without a process group, so a one-process run computes exactly what it did before."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_batch", "global_mean", "is_distributed"]


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherRows(torch.autograd.Function):
    """All processes' rows in rank order; backward hands each process the gradient of its own rows summed over every
    process's loss (all of them depend on them). Each process must hold the same number of rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.rows = dist.get_rank(), len(tensor)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_batch(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Each tensor ``(b, ...)`` of this process's share -> ``(world * b, ...)``, the global batch in rank order.

    Every process then computes the same loss over the global batch (its in-batch negatives included); the
    gradients reaching each process's rows are summed over the processes, so once DDP averages the parameter
    gradients they equal the one-process run's on the same global batch. Unchanged without a process group."""
    if not is_distributed():
        return tensors
    out = []
    for t in tensors:
        if t.requires_grad:
            out.append(_GatherRows.apply(t))
        else:  # masks and ids: no gradient (bool travels as uint8, which every backend carries)
            sent = t.to(torch.uint8) if t.dtype == torch.bool else t.contiguous()
            parts = [torch.empty_like(sent) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, sent)
            out.append(torch.cat(parts).to(t.dtype))
    return tuple(out)


def global_mean(local_mean: Tensor, local_count) -> Tensor:
    """``local_mean``, a mean over ``local_count`` items of this process's share, rescaled by
    ``world * local_count / total count`` so that the processes' average (what DDP does to the gradients, and the
    training scripts to the logged losses) is the mean over every item of the global batch, as one process computes
    it. Unchanged without a process group."""
    if not is_distributed():
        return local_mean
    device = local_mean.device if isinstance(local_mean, Tensor) else None
    count = torch.as_tensor(local_count, dtype=torch.float64, device=device).detach().reshape(1).clone()
    total = count.clone()
    dist.all_reduce(total)
    if float(total) == 0:
        return local_mean * 0.0
    return local_mean * float(dist.get_world_size() * count / total)
