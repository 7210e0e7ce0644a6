"""Progress bar on the main process and a loss log that survives resumption (``losses.jsonl``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["LossLog", "progress_bar"]


def progress_bar(total: int, initial: int = 0, disable: bool = False, desc: str = "train"):
    """A tqdm bar (imported here, not at module level)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=disable, desc=desc, dynamic_ncols=True)


class LossLog:
    """Appends one JSON record per logged step to ``path``; on resume, drops records after the resumed step so the
    file is the loss curve of one uninterrupted run."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            kept = [r for r in self.read() if r["step"] <= resume_step]
            # atomic: a run killed while this rewrite is under way must not lose the records it keeps
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.path)

    def append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        text = self.path.read_text()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):  # a run killed while appending leaves a partial last record
            lines = lines[:-1]
        return [json.loads(line) for line in lines if line.strip()]
