"""The zoo's packaged index (``zoo_index.json``): its entries and where each checkpoint loads from.

It imports nothing of mmquant but :mod:`mmquant.resources`, so the models (``from_pretrained("optvq-mnist")``,
``create_model(..., pretrained=True)``) and the command-line checks resolve zoo names through it; loading a
checkpoint, the index builder and the ``mmquant zoo`` command line are :mod:`mmquant.zoo`, which re-exports these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ZooEntry", "get_checkpoint", "list_checkpoints", "resolve"]

_INDEX = Path(__file__).with_name("zoo_index.json")


@dataclass(frozen=True)
class ZooEntry:
    """One named checkpoint: where it lives (``checkpoint_dir`` in the repository, ``repo_id`` on the Hub), what it
    is, and its headline results (from its results file)."""

    name: str
    repo_id: str
    model_type: str
    kind: str  # "model" (AutoModel) or "pipeline" (a DiffusionPipeline folder)
    size: str
    dataset: str
    headline: str
    checkpoint_dir: str
    card_data: str

    @property
    def local_path(self) -> Path | None:
        """The checkpoint folder shipped inside the package (``mmquant/checkpoints/<name>``), when it is there."""
        from .resources import checkpoints_dir

        path = checkpoints_dir() / Path(self.checkpoint_dir).name
        marker = "model_index.json" if self.kind == "pipeline" else "config.json"
        return path if (path / marker).is_file() else None


def list_checkpoints() -> list[ZooEntry]:
    """Every named checkpoint, from the packaged index."""
    return [ZooEntry(**entry) for entry in json.loads(_INDEX.read_text())]


def get_checkpoint(name: str) -> ZooEntry:
    """The zoo entry called ``name`` (its short name or its Hub repo id)."""
    for entry in list_checkpoints():
        if name in (entry.name, entry.repo_id):
            return entry
    known = [e.name for e in list_checkpoints()]
    raise KeyError(f"name={name!r}: no such checkpoint in the zoo; known: {known} (see `mmquant zoo list`).")


def resolve(name: str) -> str:
    """What to pass to ``from_pretrained`` for ``name``: the shipped folder when present (offline), else the repo id.
    A name that is not in the zoo is returned unchanged (a Hub repo id or a local path)."""
    try:
        entry = get_checkpoint(name)
    except KeyError:
        return name
    return str(entry.local_path) if entry.local_path is not None else entry.repo_id
