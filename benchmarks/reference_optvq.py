"""Load the reference OptVQ code's Sinkhorn assignment (github.com/zbr17/OptVQ) from a local checkout, for side-by-side
benchmarks and for making the stored parity fixture. Nothing of it is vendored: it is imported at run time.

``repo`` may be a work tree (with ``src/optvq``) or a bare git directory (as ``fetch`` makes); from a bare one the
needed file is extracted with ``git show`` into a temporary folder.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

QUANTIZER_PATH = "src/optvq/models/quantizer.py"


def load_reference(repo: str | Path):
    """Returns ``(assign, commit)``: ``assign(x, codebook, epsilon=10, n_iters=5) -> (plan, indices)`` runs the
    reference's cdist, ``normalize(mode="all")`` and ``sinkhorn()``, and its argmax."""
    repo = Path(repo)
    if (repo / QUANTIZER_PATH).exists():
        root = repo / "src"
        commit = _git(["-C", str(repo), "rev-parse", "HEAD"])
    else:  # a bare git directory
        commit = _git(["--git-dir", str(repo), "rev-parse", "HEAD"]).strip()
        root = Path(tempfile.gettempdir()) / f"optvq-ref-{commit[:12]}"  # one extraction per reference commit
        source = _git(["--git-dir", str(repo), "show", f"HEAD:{QUANTIZER_PATH}"])
        pkg = root / "optvq"
        (pkg / "models").mkdir(parents=True, exist_ok=True)
        (pkg / "utils").mkdir(exist_ok=True)
        for init in (pkg, pkg / "models", pkg / "utils"):
            (init / "__init__.py").write_text("")
        (pkg / "models" / "quantizer.py").write_text(source)
        # the quantizer module imports its logger at import time; sinkhorn() never uses it
        (pkg / "utils" / "logger.py").write_text("log = None\nGET_STATS = False\n")
    sys.path.insert(0, str(root))
    module = importlib.import_module("optvq.models.quantizer")

    @torch.no_grad()
    def assign(x: torch.Tensor, codebook: torch.Tensor, epsilon: float = 10.0, n_iters: int = 5):
        cost = torch.cdist(x, codebook, p=2.0)
        normalized = module.VectorQuantizerSinkhorn.normalize(None, cost, codebook.shape[1], mode="all")
        plan = module.sinkhorn(normalized, n_iters=n_iters, epsilon=epsilon, is_distributed=False)
        return plan, plan.argmax(-1)

    return assign, commit.strip()


def _git(args: list[str]) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout
