"""Where a benchmark writes its results: ``<--output_dir>/<name>.json`` (default ``outputs/benchmarks/``, never
tracked); the tracked ``benchmarks/results/<name>.json`` changes only when it is named with ``--results_file``
(alias ``--output``), as the README's commands do."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_output_arguments", "resolve_output", "write_results"]


def add_output_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """``--output_dir`` and ``--results_file``/``--output`` (dest ``output``) for the benchmark ``name``."""
    parser.add_argument("--output_dir", default="outputs/benchmarks", help=f"where {name}.json goes by default")
    parser.add_argument(
        "--results_file",
        "--output",
        dest="output",
        default=None,
        help=f"write the results to this file instead of <output_dir>/{name}.json (the tracked one: "
        f"benchmarks/results/{name}.json)",
    )


def resolve_output(args: argparse.Namespace, name: str) -> argparse.Namespace:
    """Fill ``args.output`` with ``<output_dir>/<name>.json`` when no results file was named."""
    if args.output is None:
        args.output = str(Path(args.output_dir) / f"{name}.json")
    return args


def write_results(result: dict, path: str | Path) -> None:
    """Write a benchmark's ``result`` as indented JSON to ``path`` (its folder made) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
