"""Which code produced a result: the git commit of the checkout a script runs from."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git_commit"]


def git_commit(where: str | Path) -> str:
    """HEAD of the repository holding ``where``, with ``+uncommitted`` when code under src/ or examples/ differs
    from it (results folders aside), or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ":/src", ":/examples"], cwd=where, capture_output=True, text=True
        ).stdout.splitlines()
        dirty = [line for line in status if "/results/" not in line]
        return out.stdout.strip() + ("+uncommitted" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
