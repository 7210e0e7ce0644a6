"""The argument parser of every mmquant command and training script: the module docstring kept as written, each
option's default shown after its help, and no abbreviations (``--max_step`` is an error, not ``--max_steps``)."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "make_parser"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``RawDescriptionHelpFormatter`` (the description as written) + ``ArgumentDefaultsHelpFormatter``
    (``(default: ...)`` after every option's help)."""


def make_parser(description: str | None = None, prog: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with :class:`HelpFormatter` and ``allow_abbrev=False``."""
    kwargs.setdefault("formatter_class", HelpFormatter)
    kwargs.setdefault("allow_abbrev", False)
    return argparse.ArgumentParser(prog=prog, description=description, **kwargs)
