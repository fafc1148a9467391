"""The stage contact sheet: every stage's picture side by side, labelled, so a user
can see at a glance where a result went wrong."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .imaging import quantize, resize

# What each stage's picture is called in files and on the sheet.
PICTURE_NAMES = {
    "unblend": "unblended", "mask": "mask", "remove": "removed", "crop": "crop", "resize": "resized",
    "refine": "refined", "stitch": "stitched",
}
SHOWN_ONLY_WHEN_RUN = {"unblend"}  # stages most runs skip: no grey tile for them
_LABEL_HEIGHT = 22
_SKIPPED_GREY = 0.35


def _tile(picture: np.ndarray | None, height: int, width_if_missing: int) -> np.ndarray:
    if picture is None:
        return np.full((height, width_if_missing, 3), _SKIPPED_GREY, dtype=np.float32)
    width = max(1, round(picture.shape[1] * height / picture.shape[0]))
    return resize(picture, (width, height), "lanczos" if picture.shape[0] > height else "bicubic")


def contact_sheet(stage_order: list[str], pictures: dict[str, np.ndarray], notes: dict[str, str],
                  height: int = 320) -> Image.Image:
    """A row of ``height``-pixel tiles, one per stage in ``stage_order``; a stage with no
    picture (skipped) gets a grey tile that says why."""
    tiles = [_tile(pictures.get(name), height, height) for name in stage_order]
    gap = 6
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, height + _LABEL_HEIGHT + 2 * gap), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    x = gap
    for name, tile in zip(stage_order, tiles, strict=True):
        canvas.paste(Image.fromarray(quantize(tile)), (x, gap + _LABEL_HEIGHT))
        label = PICTURE_NAMES.get(name, name)
        draw.text((x + 2, gap + 4), label if name in pictures else f"{label}: skipped", fill=(235, 235, 235), font=font)
        if name not in pictures and notes.get(name):
            _draw_wrapped(draw, notes[name], (x + 6, gap + _LABEL_HEIGHT + 6), tile.shape[1] - 12, font)
        x += tile.shape[1] + gap
    return canvas


def _draw_wrapped(draw: ImageDraw.ImageDraw, text: str, origin: tuple[int, int], width: int, font) -> None:
    words, line, y = text.split(), "", origin[1]
    for word in words:
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) > width and line:
            draw.text((origin[0], y), line, fill=(220, 220, 220), font=font)
            y, line = y + 14, word
        else:
            line = candidate
    if line:
        draw.text((origin[0], y), line, fill=(220, 220, 220), font=font)
