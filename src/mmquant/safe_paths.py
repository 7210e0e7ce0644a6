"""Names from users, files or the network that become paths: a single folder or file name, or a relative path that
must stay inside a root. Both raise a ``ValueError`` naming the argument, its value and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["check_path_component", "confined_path"]

_BAD_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_path_component(value, name: str) -> str:
    """``value`` as one folder or file name: a non-empty string without ``/``, ``\\`` or control characters, and not
    ``.`` or ``..``."""
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r}: expected a string (a single folder name).")
    if not value or value in (".", "..") or _BAD_CHARS.search(value) or len(value) > 255:
        raise ValueError(
            f"{name}={value!r}: expected a single folder name (no '/', '\\\\', control characters, '.' or '..')."
        )
    return value


def confined_path(root: str | Path, relative, name: str) -> Path:
    """``root / relative`` resolved (links followed), refused unless it lies inside ``root``: an absolute path or
    ``..`` parts that leave the root are an error, not a way out."""
    if not isinstance(relative, (str, Path)):
        raise TypeError(f"{name}={relative!r}: expected a path relative to {root}.")
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise ValueError(f"{name}={str(relative)!r}: resolves to {target}, outside {base}; expected a path inside it.")
    return target
