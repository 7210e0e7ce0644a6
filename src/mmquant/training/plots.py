"""Loss/metric curves for training output directories (matplotlib imported on use); the sample grids are
:mod:`mmquant.data.image_grids` (re-exported here)."""

from __future__ import annotations

from pathlib import Path

from ..data.image_grids import save_captioned_grid, save_image_grid

__all__ = ["plot_losses", "save_captioned_grid", "save_image_grid"]


def plot_losses(records: list[dict], keys: list[str], path: str | Path, title: str = "", logy: bool = True) -> Path:
    """Plot ``keys`` of step records (``{"step": ..., key: ...}``) against the step into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            ax.plot(*zip(*points), label=key)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
