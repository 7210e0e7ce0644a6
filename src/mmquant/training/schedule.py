"""Learning-rate schedules and reproducible batch order shared by the training scripts."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

__all__ = ["LR_SCHEDULES", "batch_indices", "grouped_batch", "hard_batch_regroup", "make_scheduler"]

LR_SCHEDULES = ("onecycle", "cosine", "constant")


def make_scheduler(optimizer, schedule: str, max_steps: int, learning_rate: float, warmup_ratio: float = 0.05):
    """``"onecycle"`` (Smith & Topin, the OptVQ reference's), or linear warm-up then ``"cosine"`` decay or
    ``"constant"``; stepped once per optimizer step. Any ``max_steps >= 1`` works: a one-cycle warm-up is at least
    two steps, and runs of fewer than four steps keep the peak rate."""
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r}: expected an integer >= 1.")
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule={schedule!r}: expected one of {LR_SCHEDULES}.")
    if schedule == "onecycle" and max_steps >= 4:
        # OneCycleLR divides by the length of its warm-up phase, pct_start * total_steps - 1 steps: a warm-up that
        # rounds to one step or less (say --max_steps 20 at 5%) divided by zero, so it is at least two steps
        pct_start = min(max(warmup_ratio, 2 / max_steps), 1 - 1 / max_steps)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=learning_rate, total_steps=max_steps, pct_start=pct_start
        )
    if schedule == "onecycle":  # 1-3 steps (a smoke run) leave no room for two phases: the peak rate throughout
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = max(1, int(warmup_ratio * max_steps))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, max_steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_indices(micro_step: int, num_examples: int, batch_size: int, seed: int) -> torch.Tensor:
    """The global batch of micro-step ``micro_step``: a slice of a per-epoch permutation fixed by ``seed``, so a
    resumed run sees exactly the batches an uninterrupted one would."""
    per_epoch = num_examples // batch_size
    epoch, position = divmod(micro_step, per_epoch)
    perm = torch.randperm(num_examples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return perm[position * batch_size : (position + 1) * batch_size]


def grouped_batch(index: torch.Tensor, micro_step: int, groups: torch.Tensor, ratio: float, seed: int) -> torch.Tensor:
    """A hard-negative batch for contrastive losses: with probability ``ratio`` (drawn from ``seed`` and
    ``micro_step``, so resumed and multi-process runs agree), the batch ``index`` is replaced by examples of its first
    example's group (``groups[i]``: an integer id per example, e.g. pairs whose captions differ only in their digits),
    drawn without replacement and topped up from ``index`` when the group is smaller than the batch; otherwise
    ``index`` is returned unchanged."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + micro_step)
    if float(torch.rand(1, generator=g)) >= ratio:
        return index
    members = (groups == groups[index[0]]).nonzero().flatten()
    members = members[torch.randperm(len(members), generator=g)][: len(index)]
    rest = index[~torch.isin(index, members)][: len(index) - len(members)]
    return torch.cat([members, rest])


def hard_batch_regroup(ratio: float, dataset: str, captions: list[str], seed: int) -> Callable | None:
    """The ``regroup`` of ``process_batch_indices`` for ``--hard_batch_ratio``: with probability ``ratio`` a batch of
    Caption MNIST pairs whose captions name the same colours at the same positions (``grouped_batch``); ``None`` when
    ``ratio`` is 0."""
    if not ratio:
        return None
    if dataset != "caption_mnist":
        raise ValueError(f"--hard_batch_ratio {ratio}: groups Caption MNIST captions; use it with caption_mnist only.")
    from ..data.caption_mnist import colour_layout_groups

    groups = torch.tensor(colour_layout_groups(captions))
    return functools.partial(grouped_batch, groups=groups, ratio=ratio, seed=seed)
