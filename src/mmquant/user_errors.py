"""Command lines report an expected user error (a missing file or folder, a bad value, no network or no token for
the Hub) as one line with the fix, and keep the traceback for ``--debug`` (or ``MMQUANT_DEBUG=1``).

    if __name__ == "__main__":
        raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_optvq.py"))

A programming error (``AttributeError``, ``RuntimeError``, ...) still shows its traceback: it is a bug to report.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["DEBUG_FLAG", "check_input_paths", "run_command", "user_error_line"]

DEBUG_FLAG = "--debug"
_USER_ERRORS = (OSError, ValueError, TypeError, KeyError, ImportError)
_NETWORK_MODULES = ("httpx", "httpcore", "requests", "urllib3")


def _is_network_error(err: BaseException) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if type(err).__module__.split(".")[0] in _NETWORK_MODULES or isinstance(err, (ConnectionError, TimeoutError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _hub_hint(err: BaseException) -> str:
    """The fix for an error talking to the Hub: no network, no or a bad token, offline mode."""
    text = str(err)
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if "401" in text or "Invalid credentials" in text or "token" in text.lower() and "invalid" in text.lower():
        return "log in with `hf auth login` or set HF_TOKEN to a write token"
    if "offline" in text.lower() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return "unset HF_HUB_OFFLINE (it is set) to reach the Hub"
    return (
        f"cannot reach the Hub at {endpoint}: check the network, or set HF_ENDPOINT to a reachable hub (e.g. "
        "`python -m mmquant.hub.local_server --root DIR`) and HF_TOKEN"
    )


def user_error_line(err: BaseException) -> str | None:
    """The one-line report of an expected user error, or None for an error that should keep its traceback."""
    module = type(err).__module__.split(".")[0]
    if module == "huggingface_hub" or _is_network_error(err):
        message = " ".join(str(err).split())[:300]
        return f"{message} ({_hub_hint(err)})"
    if not isinstance(err, _USER_ERRORS):
        return None
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    if isinstance(err, FileNotFoundError) and err.filename and str(err.filename) not in str(message):
        message = f"{err.filename}: {err.strerror or 'not found'}"
    text = " ".join(str(message).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_command(main: Callable[[list[str]], object], argv: list[str] | None = None, prog: str = "mmquant") -> int:
    """Run ``main(argv)`` (``--debug`` removed from ``argv``) and return its exit status; an expected user error
    raises ``SystemExit`` with one line (Python prints it on stderr and exits with status 1), ``Ctrl-C`` exits
    with 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("MMQUANT_DEBUG", "0") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        result = main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:
        line = None if debug else user_error_line(err)
        if line is None:
            raise
        raise SystemExit(f"{prog}: error: {line} [{DEBUG_FLAG} shows the traceback]") from None
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _is_zoo_name(name: str) -> bool:
    from .zoo_catalog import get_checkpoint

    try:
        get_checkpoint(name)
    except KeyError:
        return False
    return True


def check_input_paths(parser: argparse.ArgumentParser, args: argparse.Namespace, **kinds: str) -> None:
    """Before any model is loaded, every input path option exists: ``kinds`` maps an option's dest to ``"file"``,
    ``"dir"`` or ``"model"`` (a folder, or a Hub id ``namespace/name`` that is not a local path). ``None`` values are
    skipped, lists are checked item by item, and ``NAME=PATH`` items by their path. A typo fails in milliseconds
    with ``parser.error`` (one line, exit status 2) instead of after the model has loaded."""
    for dest, kind in kinds.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue
            path = Path(str(item).split("=", 1)[1] if "=" in str(item) and kind != "file" else str(item))
            if kind == "model" and not path.exists() and (_HUB_ID.fullmatch(str(path)) or _is_zoo_name(str(path))):
                continue  # a Hub repo id or a zoo name: resolved (and checked) by from_pretrained
            ok = path.is_file() if kind == "file" else path.is_dir()
            if not ok:
                what = "file" if kind == "file" else "folder"
                found = "is a folder" if path.is_dir() else "is a file" if path.is_file() else "does not exist"
                parser.error(f"--{dest} {item}: {path} {found}; expected an existing {what}.")
