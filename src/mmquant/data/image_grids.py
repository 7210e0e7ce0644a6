"""PNG grids of image batches and of image–caption pairs (PIL imported on use): sample grids of the training scripts
and of the generation pipelines. It sits with the data so that a pipeline and a trainer both import it from below.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["save_captioned_grid", "save_image_grid"]


def save_image_grid(rows: list[torch.Tensor], path: str | Path, value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Save image batches as a grid: one batch ``(B, C, H, W)`` per grid row (e.g. inputs over reconstructions)."""
    from PIL import Image

    lo, hi = value_range
    tiles = []
    for batch in rows:
        batch = ((batch.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        padded = torch.nn.functional.pad(batch, (1, 1, 1, 1), value=0.5)  # (B, 3, H+2, W+2)
        tiles.append(torch.cat(list(padded), dim=2))  # (3, H+2, B*(W+2))
    grid = torch.cat(tiles, dim=1)  # (3, rows*(H+2), B*(W+2))
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_captioned_grid(
    images: torch.Tensor,
    captions: list[str],
    path: str | Path,
    value_range: tuple[float, float] = (-1.0, 1.0),
    columns: int = 4,
    scale: int = 3,
    wrap: int = 30,
) -> Path:
    """Save image–caption pairs as a PNG grid: each image (``(B, C, H, W)``, upscaled ``scale`` times) above its
    caption (wrapped every ``wrap`` characters)."""
    import textwrap

    from PIL import Image, ImageDraw

    if len(images) != len(captions):
        raise ValueError(f"images and captions: {len(images)} images but {len(captions)} captions.")
    lo, hi = value_range
    batch = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)
    h, w = batch.shape[2] * scale, batch.shape[3] * scale
    lines = [textwrap.wrap(c, wrap) or [""] for c in captions]
    text_h = 12 * max(len(x) for x in lines) + 6
    cell_w, cell_h = max(w, 6 * wrap) + 8, h + text_h + 8
    rows = (len(batch) + columns - 1) // columns
    canvas = Image.new("RGB", (cell_w * min(columns, len(batch)), cell_h * rows), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, text) in enumerate(zip(batch, lines)):
        x, y = (i % columns) * cell_w + 4, (i // columns) * cell_h + 4
        array = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        canvas.paste(Image.fromarray(array).resize((w, h), Image.NEAREST), (x + (cell_w - 8 - w) // 2, y))
        draw.multiline_text((x, y + h + 3), "\n".join(text), fill="black", spacing=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
