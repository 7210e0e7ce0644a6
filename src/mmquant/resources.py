"""Files that ship inside the installed package (package data), found through ``importlib.resources``.

The dataset builders (``dataset_scripts/<name>/<name>.py``), the card templates (``hub/templates/``), the shipped
checkpoints (``checkpoints/<name>/``, among them the Caption MNIST judge) and the zoo index live inside
``src/mmquant/`` and are installed with it, so a wheel works from any directory, offline, without a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["checkpoints_dir", "dataset_scripts_root", "package_path", "templates_dir"]


def package_path(*parts: str) -> Path:
    """The file or folder ``parts`` inside the installed ``mmquant`` package, as a filesystem path."""
    return Path(str(files("mmquant").joinpath(*parts)))


def dataset_scripts_root() -> Path:
    """The packaged ``dataset_scripts/`` folder (``<name>/<name>.py`` builders and their dataset cards)."""
    return package_path("dataset_scripts")


def templates_dir() -> Path:
    """The packaged card templates (``model_card_template.md``, ``dataset_card_template.md``)."""
    return package_path("hub", "templates")


def checkpoints_dir() -> Path:
    """The packaged checkpoints of the zoo (``<name>/config.json`` or ``<name>/model_index.json``)."""
    return package_path("checkpoints")
