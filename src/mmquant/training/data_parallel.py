"""Data parallelism the way every training script does it: each process takes its contiguous share of the global
batch (the one-process run's batch, in the same order). Losses over the whole global batch (in-batch negatives,
means over a varying number of tokens) are in ``mmquant.losses.distributed``."""

from __future__ import annotations

import torch

from .schedule import batch_indices

__all__ = ["process_batch_indices", "sync_batch_norm"]


def process_batch_indices(accelerator, step: int, micro: int, num_examples: int, args, regroup=None) -> torch.Tensor:
    """This process's share of micro-batch ``micro`` of optimizer step ``step``: micro-batch
    ``step * --gradient_accumulation_steps + micro`` of the seeded per-epoch order (``batch_indices``), split in
    ``num_processes`` contiguous equal parts. With one process and no accumulation it is ``batch_indices(step)``.
    ``regroup(global_batch, micro_step)``, when given, replaces the global batch first (the same on every process,
    e.g. :func:`~mmquant.training.schedule.grouped_batch`)."""
    accumulation = getattr(args, "gradient_accumulation_steps", 1)
    micro_step = step * accumulation + micro
    index = batch_indices(micro_step, num_examples, args.batch_size, args.seed)
    if regroup is not None:
        index = regroup(index, micro_step)
    shard = args.batch_size // accelerator.num_processes
    rank = accelerator.process_index
    return index[rank * shard : (rank + 1) * shard]


def sync_batch_norm(accelerator, module):
    """``module`` with its BatchNorm layers computing their statistics over the global batch
    (``torch.nn.SyncBatchNorm``) when several processes train on GPUs; unchanged with one process, and on the CPU,
    where torch's ``SyncBatchNorm`` does not run (it needs a GPU or XPU): there each process normalises with its own
    share's statistics, so a model with BatchNorm trains close to, not exactly like, one process."""
    if accelerator.num_processes == 1 or accelerator.device.type == "cpu":
        return module
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
