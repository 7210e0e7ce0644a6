"""Training helpers shared by every example script (DESIGN.md convention 12).

Importing this package pulls in no training dependency by itself; accelerate, tqdm and matplotlib are imported by
the functions that use them.
"""

from .accelerator import make_accelerator
from .checkpointing import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_resume_path,
    save_checkpoint,
)
from .config import (
    add_accelerator_arguments,
    add_hard_batch_argument,
    add_training_arguments,
    load_yaml_defaults,
    save_resolved_args,
)
from .data_parallel import process_batch_indices, sync_batch_norm
from .interrupt import GracefulStop
from .logging import LossLog, progress_bar
from .plots import plot_losses, save_captioned_grid, save_image_grid
from .provenance import (
    check_resumed_args,
    command_line,
    git_commit,
    mean_over_processes,
    merge_result,
    portable_args,
    repo_relative,
    save_run_result,
    seed_summary,
)
from .run_end import finish_run
from .run_state import RUN_KEYS, TrainingRun, save_run_checkpoint, start_or_resume
from .schedule import LR_SCHEDULES, batch_indices, grouped_batch, hard_batch_regroup, make_scheduler
from .step import add_micro_batch, backward_and_step

__all__ = [
    "RUN_KEYS",
    "LR_SCHEDULES",
    "CheckpointError",
    "GracefulStop",
    "TrainingRun",
    "LossLog",
    "add_accelerator_arguments",
    "add_hard_batch_argument",
    "add_micro_batch",
    "add_training_arguments",
    "backward_and_step",
    "batch_indices",
    "grouped_batch",
    "hard_batch_regroup",
    "check_resumed_args",
    "command_line",
    "git_commit",
    "finish_run",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_yaml_defaults",
    "make_accelerator",
    "make_scheduler",
    "mean_over_processes",
    "merge_result",
    "portable_args",
    "process_batch_indices",
    "plot_losses",
    "progress_bar",
    "repo_relative",
    "resolve_resume_path",
    "save_captioned_grid",
    "seed_summary",
    "save_checkpoint",
    "save_image_grid",
    "save_resolved_args",
    "save_run_checkpoint",
    "save_run_result",
    "start_or_resume",
    "sync_batch_norm",
]
