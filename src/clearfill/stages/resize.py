"""Resize the crop to the refiner's working size (about one megapixel)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import imaging
from ..pipeline import Stage, State


@dataclass(frozen=True)
class ResizeConfig:
    target_pixels: int = 1024 * 1024  # about one megapixel, as ComfyUI counts it
    multiple: int = 64  # sides are multiples of this (FLUX needs 16 at least)
    method: str = "lanczos"

    def __post_init__(self) -> None:
        if self.target_pixels < self.multiple ** 2:
            raise ValueError(f"resize.target_pixels must be at least multiple**2 = {self.multiple ** 2}")
        if self.multiple < 1:
            raise ValueError(f"resize.multiple must be >= 1, got {self.multiple}")
        if self.method not in imaging.RESAMPLERS:
            raise ValueError(f"resize.method must be one of {sorted(imaging.RESAMPLERS)}, got {self.method!r}")


def working_size(size: tuple[int, int], target_pixels: int, multiple: int) -> tuple[int, int]:
    """Scale (w, h) to about ``target_pixels``, aspect kept, each side rounded down to
    ``multiple`` (never below one multiple). 640x512 -> 1088x896 at 1 MP and 64."""
    width, height = size
    scale = math.sqrt(target_pixels / (width * height))
    return (
        max(multiple, math.floor(width * scale / multiple) * multiple),
        max(multiple, math.floor(height * scale / multiple) * multiple),
    )


class ResizeStage(Stage):
    name = "resize"

    def __init__(self, config: ResizeConfig):
        self.config = config

    def run(self, state: State) -> None:
        size = working_size(state.crop.size, self.config.target_pixels, self.config.multiple)
        state.working = imaging.resize(state.crop.image, size, self.config.method)
        state.working_mask = imaging.resize(state.crop.refine_mask, size, "bilinear")
        state.notes[self.name] = f"{state.crop.size[0]}x{state.crop.size[1]} -> {size[0]}x{size[1]} ({self.config.method})"

    def picture(self, state: State) -> np.ndarray:
        return state.working
