"""The one ``Accelerator`` every training script builds (the diffusers training-script opening): gradient
accumulation, mixed precision, trackers and the project configuration from the shared arguments."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import save_resolved_args

__all__ = ["make_accelerator"]


def make_accelerator(args, project_name: str | None = None):
    """``--num_threads`` torch threads; an ``Accelerator`` with ``--gradient_accumulation_steps``,
    ``--mixed_precision``, ``--report_to`` trackers (initialised under ``project_name`` with the arguments) logging
    to ``<output_dir>/logs``; a check that ``--batch_size`` splits evenly over the processes; the resolved arguments
    saved to ``--output_dir`` by the main process; and torch seeded with ``--seed`` (the same initial weights on
    every process).

    The launcher decides the rest: ``accelerate launch --config_file examples/accelerate_configs/<name>.yaml`` picks
    the processes, machines, GPUs or CPU, and FSDP; the script is the same for all of them.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    accumulation = getattr(args, "gradient_accumulation_steps", 1)
    if not isinstance(accumulation, int) or accumulation < 1:
        raise ValueError(f"--gradient_accumulation_steps {accumulation!r}: expected an integer >= 1.")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    output_dir = Path(args.output_dir)
    report_to = getattr(args, "report_to", "none")
    accelerator = Accelerator(
        gradient_accumulation_steps=accumulation,
        mixed_precision=args.mixed_precision,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    world = accelerator.num_processes
    if args.batch_size % world:
        raise ValueError(
            f"--batch_size {args.batch_size} must be divisible by the {world} processes (it is the global batch "
            "of one micro-step, split evenly over them)."
        )
    if accelerator.is_main_process:
        save_resolved_args(args, output_dir)
    if report_to != "none":
        config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(project_name or output_dir.name, config=config)
    torch.manual_seed(args.seed)
    return accelerator
