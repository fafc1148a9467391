"""Upscale and resize the crop to the refiner's working size (about one megapixel).

With an SR model configured, a crop smaller than the working size first goes
through it (tiled), then Lanczos takes it to the exact size; without one (or when
the model is unavailable and the preset allows falling back) Lanczos does it all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import imaging
from ..options import check_range
from ..pipeline import Stage, State


@dataclass(frozen=True)
class ResizeConfig:
    target_pixels: int = 1024 * 1024  # about one megapixel, as ComfyUI counts it
    multiple: int = 64  # sides are multiples of this (FLUX needs 16 at least)
    method: str = "lanczos"
    upscaler: str | None = None  # SR model (registry name or file) run before the resize
    upscaler_on_cpu: bool = False  # SR on a CPU takes about a minute per 512 px crop: off unless asked
    upscaler_fallback: bool = True  # if the model cannot be loaded: Lanczos (True) or an error (False)
    tile: int = 512  # SR tile size (input pixels)
    tile_overlap: int = 32

    def __post_init__(self) -> None:
        if self.target_pixels < self.multiple ** 2:
            raise ValueError(f"resize.target_pixels must be at least multiple**2 = {self.multiple ** 2}")
        if self.multiple < 1:
            raise ValueError(f"resize.multiple must be >= 1, got {self.multiple}")
        if self.method not in imaging.RESAMPLERS:
            raise ValueError(f"resize.method must be one of {sorted(imaging.RESAMPLERS)}, got {self.method!r}")
        if self.multiple % 16:
            raise ValueError(f"resize.multiple must be a multiple of 16 (FLUX's floor), got {self.multiple}")
        check_range("resize.target_pixels", self.target_pixels, self.multiple ** 2, 16_000_000)
        check_range("resize.tile", self.tile, 16, 4096)
        if not 0 <= self.tile_overlap < self.tile:
            raise ValueError("resize.tile_overlap must be >= 0 and smaller than resize.tile")


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
    needs = ("crop",)
    makes = ("working", "working_mask")

    def __init__(self, config: ResizeConfig, device: str = "auto"):
        self.config = config
        self.upscaler, self.upscaler_note = self._load_upscaler(device)

    def _load_upscaler(self, device: str):
        """(the loaded SR model or None, why it is not used)."""
        cfg = self.config
        if cfg.upscaler is None:
            return None, ""
        from ..models import load_optional

        def load():
            from ..models.upscaler import Upscaler

            return Upscaler(cfg.upscaler, device=device, tile=cfg.tile, overlap=cfg.tile_overlap)

        upscaler, why = load_optional(load, what=f"SR model {cfg.upscaler}", setting="resize.upscaler_on_cpu",
                                      device=device, allow_cpu=cfg.upscaler_on_cpu, fallback=cfg.upscaler_fallback)
        return upscaler, (f"{why}; fell back to {cfg.method}" if why else "")

    def run(self, state: State) -> None:
        size = working_size(state.crop.size, self.config.target_pixels, self.config.multiple)
        source, how = state.crop.image, self.config.method
        if self.upscaler is not None and state.crop.size[0] * state.crop.size[1] < size[0] * size[1]:
            source = self.upscaler(source, progress=state.progress.steps(self.name))
            how = f"{self.upscaler.label} x{self.upscaler.scale}, then {self.config.method}"
        elif self.upscaler is not None:
            how += f" (crop already at the working size: {self.upscaler.label} skipped)"
        elif self.upscaler_note:
            how += f"; {self.upscaler_note}"
        state.working = imaging.resize(source, size, self.config.method)
        state.working_mask = imaging.resize(state.crop.refine_mask, size, "bilinear")
        state.notes[self.name] = f"{state.crop.size[0]}x{state.crop.size[1]} -> {size[0]}x{size[1]} ({how})"

    def picture(self, state: State) -> np.ndarray:
        return state.working
