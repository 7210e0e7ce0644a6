"""``--config file.yaml`` defaults with command-line overrides, and the resolved arguments saved to ``output_dir``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

__all__ = ["add_accelerator_arguments", "add_training_arguments", "load_yaml_defaults", "save_resolved_args"]


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
        actions = {action.dest: action for action in parser._actions}
        for key, value in data.items():
            _check_yaml_value(parser, actions[key], value, config_path)
        parser.set_defaults(**data)
    args = parser.parse_args(argv)
    _check_training_arguments(parser, args)
    return args


def _check_yaml_value(parser: argparse.ArgumentParser, action: argparse.Action, value, config_path: str) -> None:
    """A YAML value passes the checks argparse applies to the same value on the command line: the option's
    ``choices``, its ``type`` (int, float or a converter), a flag's bool, and its number of values."""
    where = f"--{action.dest} {value!r} (from --config {config_path})"
    if value is None:  # "not set": only for an option whose default is unset too
        if action.default is not None:
            parser.error(f"{where}: expected a value (the option has no 'unset'); remove the key for its default.")
        return
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            parser.error(f"{where}: expected true or false.")
        return
    many = action.nargs in ("*", "+") or isinstance(action.nargs, int)
    if many:
        if not isinstance(value, list):
            parser.error(f"{where}: expected a list of values.")
        if (action.nargs == "+" and not value) or (isinstance(action.nargs, int) and len(value) != action.nargs):
            parser.error(f"{where}: expected {action.nargs} values.")
    for item in value if many else [value]:
        if action.type is int and (not isinstance(item, int) or isinstance(item, bool)):
            parser.error(f"{where}: expected an integer.")
        elif action.type is float and (not isinstance(item, (int, float)) or isinstance(item, bool)):
            parser.error(f"{where}: expected a number.")
        elif action.type not in (None, int, float, str) and isinstance(item, str):
            try:  # a converter (json.loads, a parser of NAME=VALUE, ...) sees the string the command line would give
                action.type(item)
            except (TypeError, ValueError) as err:
                parser.error(f"{where}: {err}")
        elif action.type in (None, str) and isinstance(action.default, str) and not isinstance(item, str):
            parser.error(f"{where}: expected a string (quote it in the YAML file).")
        if action.choices is not None and item not in action.choices:
            parser.error(f"{where}: invalid choice; expected one of {sorted(map(str, action.choices))}.")


# Range rules of the training scripts' options, by name; a YAML value is checked like a command-line one.
# Counts of things to use (samples, images, examples) must be >= 1 when given: a negative count used to slice
# "all but N" silently. Each bound is one of mmquant.limits'.
_COUNT_SUFFIXES = ("_samples", "_images", "_examples", "_candidates", "_size")


def _rules() -> dict:
    from ..limits import MAX_SEED

    return {
        "max_steps": (int, lambda v: v >= 1, ">= 1"),
        "batch_size": (int, lambda v: v >= 1, ">= 1"),
        "learning_rate": (float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
        "warmup_ratio": (float, lambda v: 0 <= v <= 1, "in [0, 1]"),
        "weight_decay": (float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
        "max_grad_norm": (float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0 (0: no clipping)"),
        "dropout": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
        "eval_steps": (int, lambda v: v >= 1, ">= 1"),
        "log_steps": (int, lambda v: v >= 1, ">= 1 (log every N steps)"),
        "gradient_accumulation_steps": (int, lambda v: v >= 1, ">= 1"),
        "checkpointing_steps": (int, lambda v: v >= 1, ">= 1"),
        "checkpoints_total_limit": (int, lambda v: v >= 1, ">= 1"),
        "num_threads": (int, lambda v: v >= 1, ">= 1 (or leave it unset)"),
        "seed": (int, lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]"),
    }


# Input paths of the training scripts, by option name: checked before any data or model is loaded.
_INPUT_PATHS = {
    "data_dir": "dir",
    "mnist_root": "dir",
    "stage1": "model",
    "init_from": "dir",
    "image_features": "file",
}


def _check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The training scripts' numeric arguments (where the parser has them) must make sense, whether they come from
    the command line or the YAML file; optional ones may stay unset (None). Input paths must exist."""
    from ..user_errors import check_input_paths

    dests = {action.dest for action in parser._actions}
    init_from = getattr(args, "init_from", None)
    if "init_from" in dests and init_from and not Path(init_from).is_dir():  # names the missing step
        parser.error(
            f"--init_from {init_from}: no such folder; it is the previous phase's --output_dir, and the phases run in "
            "order: train the previous phase first (see the README)."
        )
    check_input_paths(parser, args, **{k: v for k, v in _INPUT_PATHS.items() if k in dests})
    rules = _rules()
    for action in parser._actions:
        name = action.dest
        rule = rules.get(name)
        if rule is None and action.type is int and name.endswith(_COUNT_SUFFIXES):
            rule = (int, lambda v: v >= 1, ">= 1 (leave it unset for all)")
        value = getattr(args, name, None)
        if rule is None or (value is None and action.default is None):  # an optional argument left unset
            continue
        kind, ok, expected = rule
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (kind is int and not isinstance(value, int)) or not ok(value):
            parser.error(f"--{name} {value!r}: expected {expected}.")


def save_resolved_args(args: argparse.Namespace, output_dir: str | Path) -> Path:
    """Write the final arguments to ``<output_dir>/args.json``."""
    path = Path(output_dir) / "args.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vars(args), indent=2, default=str))
    return path


def add_accelerator_arguments(parser: argparse.ArgumentParser, *, report_to: str = "none") -> None:
    """The arguments ``make_accelerator`` reads besides the batch, seed, threads and output folder: gradient
    accumulation, mixed precision and trackers."""
    add = parser.add_argument
    add(
        "--gradient_accumulation_steps",
        type=int,
        default=1,
        help="micro-batches of --batch_size per optimizer step (the effective batch is their product)",
    )
    add(
        "--mixed_precision",
        default="no",
        choices=["no", "bf16", "fp16"],
        help="accelerate autocast (bf16 runs on CPU)",
    )
    add(
        "--report_to",
        default=report_to,
        choices=["tensorboard", "none"],
        help="trackers: TensorBoard logs under <output_dir>/logs, or none",
    )


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a fraction in [0, 1]")
    return value


def add_hard_batch_argument(parser: argparse.ArgumentParser, loss: str) -> None:
    """``--hard_batch_ratio`` (Caption MNIST, not in the papers): the fraction of batches drawn from one colour layout
    (``mmquant.training.hard_batch_regroup``), so that ``loss`` can tell their pairs apart only by their digits."""
    parser.add_argument(
        "--hard_batch_ratio",
        type=_fraction,
        default=0.0,
        help="Caption MNIST, not in the paper: this fraction of batches holds pairs whose captions name the same "
        f"colours at the same quadrants, so {loss} can tell them apart only by their digits",
    )


def add_training_arguments(
    parser: argparse.ArgumentParser,
    *,
    batch_size: int,
    lr_schedule: str = "cosine",
    max_steps: int = 1000,
    report_to: str = "none",
) -> None:
    """The arguments every training script shares: steps, batch, gradient accumulation, optimiser schedule,
    precision, trackers, seed, evaluation and checkpoint cadence, resuming, the results file and threads
    (script-specific ones are added beside them)."""
    from .schedule import LR_SCHEDULES

    add = parser.add_argument
    add("--max_steps", type=int, default=max_steps, help="optimizer steps")
    add("--batch_size", type=int, default=batch_size, help="global batch per optimizer (micro-)step")
    add("--learning_rate", type=float, default=1e-3, help="peak learning rate")
    add("--lr_schedule", default=lr_schedule, choices=LR_SCHEDULES, help="learning-rate schedule over --max_steps")
    add("--warmup_ratio", type=float, default=0.05, help="fraction of --max_steps spent warming up")
    add("--weight_decay", type=float, default=0.0, help="optimizer weight decay")
    add_accelerator_arguments(parser, report_to=report_to)
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
