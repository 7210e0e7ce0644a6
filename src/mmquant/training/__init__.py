"""Training helpers shared by every example script (DESIGN.md convention 12).

Importing this package pulls in no training dependency by itself; accelerate, tqdm and matplotlib are imported by
the functions that use them.
"""

from .checkpointing import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_resume_path,
    save_checkpoint,
)
from .config import load_yaml_defaults, save_resolved_args
from .logging import LossLog, progress_bar
from .plots import plot_losses, save_image_grid

__all__ = [
    "CheckpointError",
    "LossLog",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_yaml_defaults",
    "plot_losses",
    "progress_bar",
    "resolve_resume_path",
    "save_checkpoint",
    "save_image_grid",
    "save_resolved_args",
]
