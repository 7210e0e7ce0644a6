"""Which code produced a result: the git commit of the checkout a script runs from, and the command, written with
repository-relative paths (a path outside the repository becomes the placeholder ``<external>/<name>``), so that a
shipped results file records no machine's absolute paths."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["check_resumed_args", "command_line", "git_commit", "merge_result", "portable_args", "repo_relative"]

EXTERNAL = "<external>"


def git_commit(where: str | Path) -> str:
    """HEAD of the repository holding ``where``, with ``+uncommitted`` when code under src/ or examples/ differs
    from it (results folders aside); outside a git checkout ``"unknown"``. ``$MMQUANT_COPIED_FROM_COMMIT``, when
    set, wins over both: it is set for a copy of a clean checkout run on another machine (a GPU one, say) after
    ``benchmarks/tree_manifest.py check`` confirmed that every tracked file is that commit's, and such a copy can
    carry a ``.git`` of another commit (seen on a lent GPU machine: a ``.git`` of the session's first commit)."""
    copied = os.environ.get("MMQUANT_COPIED_FROM_COMMIT")
    if copied:
        return copied
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ":/src", ":/examples"], cwd=where, capture_output=True, text=True
        ).stdout.splitlines()
        dirty = [line for line in status if "/results/" not in line]
        return out.stdout.strip() + ("+uncommitted" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def _repo_root(where: str | Path | None = None) -> Path | None:
    """The root of the git repository holding ``where`` (default: the current directory, else the running script's
    folder), or None outside a checkout."""
    if where is None:
        script = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else None
        return _repo_root(Path.cwd()) or (_repo_root(script) if script is not None and script.is_dir() else None)
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
        return None
    return Path(out).resolve() if out else None


def repo_relative(path: str | Path, root: Path | None = None) -> str:
    """``path`` as recorded in a results file: relative to the repository root when inside it (a relative ``path`` is
    taken from the current directory), else ``<external>/<last part>``."""
    root = root if root is not None else _repo_root()
    absolute = Path(path).expanduser().resolve()
    if root is not None and absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix() or "."
    return f"{EXTERNAL}/{absolute.name}"


def portable_args(argv: list[str], root: Path | None = None) -> list[str]:
    """``argv`` with every absolute path (``/abs``, ``--opt=/abs``, ``name=/abs``) written by :func:`repo_relative`;
    relative paths and other values are kept."""
    root = root if root is not None else _repo_root()
    out = []
    for arg in argv:
        head, sep, value = arg.rpartition("=") if "=" in arg else ("", "", arg)
        if value.startswith(("/", "~")):
            value = repo_relative(value, root)
        out.append(f"{head}{sep}{value}")
    return out


def command_line() -> str:
    """The command that started this process, as ``python <script> <args>`` with absolute paths made
    repository-relative or ``<external>/...`` (:func:`portable_args`); empty in an interactive session."""
    if not sys.argv or not sys.argv[0]:
        return ""
    root = _repo_root()
    script = sys.argv[0]
    script = repo_relative(script, root) if Path(script).is_absolute() else Path(script).as_posix()
    return "python " + " ".join([script, *portable_args(sys.argv[1:], root)])


def seed_summary(per_seed) -> dict[str, float]:
    """The mean over seeds of each metric of ``per_seed`` (an iterable of ``{metric: value}``, one per seed) and its
    sample standard deviation as ``<metric>_std`` (0 with one seed), rounded to 4 places: the mean row of a seeded
    table (the cards show it as ``mean ± std``)."""
    import statistics

    per_seed = list(per_seed)
    summary = {}
    for metric in sorted({m for values in per_seed for m in values}):
        values = [v[metric] for v in per_seed if metric in v]
        summary[metric] = round(statistics.mean(values), 4)
        summary[f"{metric}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
    return summary


def merge_result(path: str | Path, key: str, entry: dict) -> Path:
    """Put ``entry`` under ``key`` in the JSON results file ``path`` (created when missing), keeping other runs.

    The read, merge and atomic replace hold an exclusive lock on ``.<name>.lock`` beside the file (where ``fcntl``
    exists), so that two runs finishing at once both keep their entry."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(f".{path.name}.lock")):
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged[key] = entry
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=2) + "\n")
        tmp.replace(path)
    return path


@contextlib.contextmanager
def _locked(lock_path: Path):
    """An exclusive ``fcntl.flock`` on ``lock_path`` for the ``with`` block (no lock where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_run_result(output_dir: str | Path, result: dict, results_file: str | None, run_name: str | None) -> Path:
    """Write ``result`` to ``output_dir/eval_results.json`` and, when ``results_file`` is given, merge it there under
    ``run_name`` (default: the output folder's name)."""
    output_dir = Path(output_dir)
    path = output_dir / "eval_results.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if results_file:
        merge_result(results_file, run_name or output_dir.name, result)
    return path


def mean_over_processes(accelerator, record: dict) -> dict:
    """``record``'s float values averaged over the processes (the figures of the global batch); as is with one."""
    if accelerator.num_processes == 1:
        return record
    import torch

    packed = accelerator.reduce(torch.tensor(list(record.values())), reduction="mean")
    return dict(zip(record, packed.tolist()))


def check_resumed_args(args, state: dict, keys, checkpoint) -> None:
    """A resumed run must keep the arguments its loss curve depends on (``keys``), as saved in ``state``."""
    for key in keys:
        if key in state and state[key] != getattr(args, key):
            raise ValueError(
                f"--{key} {getattr(args, key)!r} differs from the {state[key]!r} of {checkpoint}: a resumed run must "
                "keep it to continue the same loss curve (or start a new --output_dir)."
            )
