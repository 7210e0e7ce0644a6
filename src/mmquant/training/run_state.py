"""Starting or resuming a training run the same way in every script: restore the latest (or a named) checkpoint,
refuse a resume whose loss curve would differ, keep the list of code commits the run was trained with, and write
checkpoints that carry that bookkeeping."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpointing import load_checkpoint, resolve_resume_path, save_checkpoint
from .provenance import check_resumed_args, git_commit

__all__ = ["RUN_KEYS", "TrainingRun", "save_run_checkpoint", "start_or_resume"]

# the arguments every resumed run must keep (a trainer adds its own: phase, hard_batch_ratio, ...)
RUN_KEYS = ("seed", "max_steps", "batch_size", "lr_schedule", "gradient_accumulation_steps")


@dataclass
class TrainingRun:
    """``step`` reached, ``commit`` of this session's code, ``session_commits`` of every session so far, and the
    checkpoint this session resumed from (None for a fresh start)."""

    step: int
    commit: str
    session_commits: list[str]
    resumed_from: Path | None


def start_or_resume(
    args,
    output_dir: str | Path,
    model,
    optimizer,
    scheduler=None,
    *,
    run_keys: tuple[str, ...],
    code_dir: str | Path,
    accelerator=None,
    extras: dict | None = None,
) -> TrainingRun:
    """Resume from ``args.resume_from_checkpoint`` (None, ``"latest"`` or a path) or start fresh.

    A fresh start seeds torch with ``args.seed`` (a per-process stream when there are several processes); a resumed
    run continues the RNG stream its checkpoint saved. ``run_keys`` are the arguments a resumed run must keep.
    """
    commit = git_commit(code_dir)
    resume = resolve_resume_path(args.resume_from_checkpoint, output_dir)
    if (
        resume is None
        and args.resume_from_checkpoint == "latest"
        and (accelerator is None or accelerator.is_main_process)
    ):
        # asked to resume but there is nothing to resume from: a fresh start, said where it cannot be missed
        print(
            f"--resume_from_checkpoint latest: no complete checkpoint-<step> folder in {output_dir}; starting a "
            "fresh run from step 0.",
            file=sys.stderr,
            flush=True,
        )
    if resume is None:
        rank = 0 if accelerator is None else accelerator.process_index
        torch.manual_seed(args.seed * 7919 + rank)
        return TrainingRun(0, commit, [commit], None)
    state = load_checkpoint(resume, model, optimizer, scheduler, accelerator=accelerator, extras=extras)
    check_resumed_args(args, state, run_keys, resume)
    step = state["step"]
    # checkpoints written before the commits were recorded say so rather than guess
    commits = state.get("session_commits", [f"unrecorded (steps 1-{step})"]) + [commit]
    (accelerator.print if accelerator is not None else print)(f"resumed from {resume} at step {step}")
    return TrainingRun(step, commit, commits, resume)


def save_run_checkpoint(
    run: TrainingRun,
    args,
    output_dir: str | Path,
    model,
    optimizer,
    scheduler=None,
    *,
    run_keys: tuple[str, ...],
    accelerator=None,
    extras: dict | None = None,
) -> Path:
    """``checkpoint-<run.step>`` with the run's ``run_keys`` arguments and session commits (atomic, rotated to
    ``args.checkpoints_total_limit``)."""
    state = {key: getattr(args, key) for key in run_keys} | {"session_commits": run.session_commits}
    return save_checkpoint(
        output_dir,
        run.step,
        model,
        optimizer,
        scheduler,
        state,
        args.checkpoints_total_limit,
        accelerator=accelerator,
        extras=extras,
    )
