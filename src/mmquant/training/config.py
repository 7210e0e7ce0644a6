"""``--config file.yaml`` defaults with command-line overrides, and the resolved arguments saved to ``output_dir``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["load_yaml_defaults", "save_resolved_args"]


def load_yaml_defaults(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with the YAML file of ``--config`` (if any) as defaults; unknown YAML keys are an error."""
    import yaml

    known, _ = parser.parse_known_args(argv)
    config_path = getattr(known, "config", None)
    if config_path:
        data = yaml.safe_load(Path(config_path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"--config {config_path}: expected a mapping of argument names to values.")
        valid = {action.dest for action in parser._actions}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"--config {config_path}: unknown keys {unknown}; valid keys are {sorted(valid)}.")
        parser.set_defaults(**data)
    return parser.parse_args(argv)


def save_resolved_args(args: argparse.Namespace, output_dir: str | Path) -> Path:
    """Write the final arguments to ``<output_dir>/args.json``."""
    path = Path(output_dir) / "args.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vars(args), indent=2, default=str))
    return path
