"""``--config file.yaml`` defaults with command-line overrides, and the resolved arguments saved to ``output_dir``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

__all__ = ["add_training_arguments", "load_yaml_defaults", "save_resolved_args"]


def load_yaml_defaults(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with the YAML file of ``--config`` (if any) as defaults; unknown YAML keys are an error."""
    import yaml

    known, _ = parser.parse_known_args(argv)
    config_path = getattr(known, "config", None)
    if config_path:
        try:
            data = yaml.safe_load(Path(config_path).read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"--config {config_path}: not valid YAML ({err}).") from err
        if not isinstance(data, dict):
            raise ValueError(f"--config {config_path}: expected a mapping of argument names to values.")
        valid = {action.dest for action in parser._actions}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"--config {config_path}: unknown keys {unknown}; valid keys are {sorted(valid)}.")
        parser.set_defaults(**data)
    args = parser.parse_args(argv)
    _check_training_arguments(parser, args)
    return args


def _check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The shared arguments of :func:`add_training_arguments` (where the parser has them) must make sense; a YAML
    value is not checked by argparse's ``type=``, so the types are checked here too."""
    rules = {
        "max_steps": (int, lambda v: v >= 1, ">= 1"),
        "batch_size": (int, lambda v: v >= 1, ">= 1"),
        "learning_rate": (float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
        "warmup_ratio": (float, lambda v: 0 <= v <= 1, "in [0, 1]"),
        "weight_decay": (float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
        "eval_steps": (int, lambda v: v >= 1, ">= 1"),
        "checkpointing_steps": (int, lambda v: v >= 1, ">= 1"),
        "checkpoints_total_limit": (int, lambda v: v >= 1, ">= 1"),
        "seed": (int, lambda v: True, "an integer"),
    }
    for name, (kind, ok, expected) in rules.items():
        if not hasattr(args, name) or not any(a.dest == name for a in parser._actions):
            continue
        value = getattr(args, name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (kind is int and not isinstance(value, int)) or not ok(value):
            parser.error(f"--{name} {value!r}: expected {expected}.")


def save_resolved_args(args: argparse.Namespace, output_dir: str | Path) -> Path:
    """Write the final arguments to ``<output_dir>/args.json``."""
    path = Path(output_dir) / "args.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vars(args), indent=2, default=str))
    return path


def add_training_arguments(
    parser: argparse.ArgumentParser, *, batch_size: int, lr_schedule: str = "cosine", max_steps: int = 1000
) -> None:
    """The arguments every training script shares: steps, batch, optimiser schedule, precision, seed, evaluation
    and checkpoint cadence, resuming, the results file and threads (script-specific ones are added beside them)."""
    from .schedule import LR_SCHEDULES

    add = parser.add_argument
    add("--max_steps", type=int, default=max_steps, help="optimizer steps")
    add("--batch_size", type=int, default=batch_size, help="global batch per optimizer (micro-)step")
    add("--learning_rate", type=float, default=1e-3, help="peak learning rate")
    add("--lr_schedule", default=lr_schedule, choices=LR_SCHEDULES, help="learning-rate schedule over --max_steps")
    add("--warmup_ratio", type=float, default=0.05, help="fraction of --max_steps spent warming up")
    add("--weight_decay", type=float, default=0.0, help="optimizer weight decay")
    add(
        "--mixed_precision",
        default="no",
        choices=["no", "bf16", "fp16"],
        help="accelerate autocast (bf16 runs on CPU)",
    )
    add("--seed", type=int, default=0, help="seed of the model initialisation and the batches")
    add("--eval_steps", type=int, default=500, help="evaluate (and save samples) every N steps")
    add("--checkpointing_steps", type=int, default=500, help="save checkpoint-<step>/ every N steps")
    add("--checkpoints_total_limit", type=int, default=2, help="keep the newest N checkpoints")
    add("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-<step> folder")
    add(
        "--results_file",
        default=None,
        help="also merge the final test figures into this JSON file (none by default: only "
        "<output_dir>/eval_results.json is written; name a tracked results file to update it)",
    )
    add("--run_name", default=None, help="key of this run in --results_file")
    add("--num_threads", type=int, default=None, help="torch intra-op threads per process")
