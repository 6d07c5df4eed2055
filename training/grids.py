"""Side-by-side comparison images: labelled panels in rows."""

from __future__ import annotations

from PIL import Image, ImageDraw

__all__ = ["labelled_row", "stack_rows"]

_LABEL_HEIGHT = 16


def labelled_row(panels: dict[str, Image.Image]) -> Image.Image:
    """Equal-size panels side by side, each with its label above."""
    width, height = next(iter(panels.values())).size
    row = Image.new("RGB", (width * len(panels), height + _LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(row)
    for index, (label, panel) in enumerate(panels.items()):
        row.paste(panel, (index * width, _LABEL_HEIGHT))
        draw.text((index * width + 4, 2), label, fill="black")
    return row


def stack_rows(rows: list[Image.Image]) -> Image.Image:
    """Rows of any widths, one under the other on white."""
    size = (max(row.width for row in rows), sum(row.height for row in rows))
    grid = Image.new("RGB", size, "white")
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height
    return grid
