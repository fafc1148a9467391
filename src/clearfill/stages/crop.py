"""Context crop: cut the region around the hole that later stages work on.

Follows ComfyUI-Inpaint-CropAndStitch's "free size" semantics: the hole's
bounding box grows by max(size * (expand_factor - 1), expand_pixels,
blend_pixels ** 1.5) in total, split between both sides; each side is rounded up
to a multiple of ``padding``; the box is shifted inward to stay inside the image,
and edge pixels are replicated only when the box is larger than the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import imaging
from ..options import check_range
from ..pipeline import CropRecord, Stage, State


@dataclass(frozen=True)
class CropConfig:
    expand_pixels: int = 64  # least context added around the hole (in total per axis)
    expand_factor: float = 1.2  # context as a multiple of the hole's size
    padding: int = 64  # crop sides are multiples of this
    mask_blur_pixels: float = 8.0  # the refiner's mask: hole grown by half this, softened over the other half
    blend_pixels: float = 32.0  # width of the feathered seam used to stitch the result back

    def __post_init__(self) -> None:
        check_range("crop.expand_factor", self.expand_factor, 1.0, 4.0)
        check_range("crop.padding", self.padding, 1, 1024)
        check_range("crop.expand_pixels", self.expand_pixels, 0, 8192)
        check_range("crop.mask_blur_pixels", self.mask_blur_pixels, 0, 256)
        check_range("crop.blend_pixels", self.blend_pixels, 0, 256)  # the context grows by blend ** 1.5

    @property
    def seam_reach(self) -> float:
        """How far outside the hole the stitch may change pixels."""
        return self.mask_blur_pixels / 2 + self.blend_pixels


def context_span(lo: int, hi: int, limit: int, config: CropConfig) -> tuple[int, int]:
    """Grow [lo, hi) along one axis of length ``limit`` into the context span (may
    exceed [0, limit) only when it is longer than the axis)."""
    size = hi - lo
    margin = max(size * (config.expand_factor - 1), config.expand_pixels, config.blend_pixels ** 1.5,
                 2 * math.ceil(config.seam_reach))
    side = math.ceil((size + margin) / config.padding) * config.padding
    start = math.floor((lo + hi - side) / 2)
    if side <= limit:
        start = min(max(start, 0), limit - side)
    else:
        start = -((side - limit) // 2)
    return start, start + side


def context_box(hole: np.ndarray, config: CropConfig) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the context crop around ``hole``; None for an empty hole."""
    bbox = imaging.bounding_box(hole)
    if bbox is None:
        return None
    height, width = hole.shape
    x0, x1 = context_span(bbox[0], bbox[2], width, config)
    y0, y1 = context_span(bbox[1], bbox[3], height, config)
    return x0, y0, x1, y1


def crop_replicated(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``pixels[y0:y1, x0:x1]`` where parts of the box outside the array repeat its edge."""
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = box
    inner = pixels[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    pad = [(max(-y0, 0), max(y1 - height, 0)), (max(-x0, 0), max(x1 - width, 0))]
    pad += [(0, 0)] * (pixels.ndim - 2)
    return np.pad(inner, pad, mode="edge") if any(a or b for a, b in pad) else inner.copy()


def crop_context(removed: np.ndarray, hole: np.ndarray, config: CropConfig) -> CropRecord | None:
    box = context_box(hole, config)
    if box is None:
        return None
    hole_crop = crop_replicated(hole, box)
    half_blur = config.mask_blur_pixels / 2
    return CropRecord(
        box=box,
        image=crop_replicated(removed, box),
        hole=hole_crop,
        refine_mask=imaging.feather(hole_crop, half_blur, half_blur),
        blend_mask=imaging.feather(hole_crop, half_blur, config.blend_pixels),
    )


class CropStage(Stage):
    name = "crop"
    needs = ("removed", "hole")
    makes = ("crop",)

    def __init__(self, config: CropConfig):
        self.config = config

    def run(self, state: State) -> None:
        state.crop = crop_context(state.removed, state.hole, self.config)
        x0, y0, x1, y1 = state.crop.box
        state.notes[self.name] = f"{x1 - x0}x{y1 - y0} at ({x0}, {y0})"

    def picture(self, state: State) -> np.ndarray:
        return state.crop.image
