"""OpenCV's diffusion fills: Telea (fast marching) and Navier-Stokes.

Fast and weight-free, but they smear: good for thin scratches and text, poor for
large holes (see the benchmark). Kept as cheap baselines and fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..imaging import quantize, to_float
from .base import register


@dataclass(frozen=True)
class DiffusionFillConfig:
    radius: int = 5  # neighbourhood each filled pixel draws from, in pixels

    def __post_init__(self) -> None:
        if self.radius < 1:
            raise ValueError(f"radius must be >= 1, got {self.radius}")


class DiffusionFill:
    def __init__(self, flag: int, config: DiffusionFillConfig):
        self.flag = flag
        self.config = config

    def __call__(self, image: np.ndarray, hole: np.ndarray, progress=None) -> np.ndarray:
        holes8 = hole.astype(np.uint8)
        filled = cv2.inpaint(quantize(image), holes8, self.config.radius, self.flag)  # one call: nothing to report
        return to_float(filled)


@register("telea", config=DiffusionFillConfig, summary="OpenCV Telea fast-marching fill (smooth, fast)", auto_rank=10)
def telea(config: DiffusionFillConfig, device: str = "auto") -> DiffusionFill:
    return DiffusionFill(cv2.INPAINT_TELEA, config)


@register("ns", config=DiffusionFillConfig, summary="OpenCV Navier-Stokes fill (smooth, fast)", auto_rank=11)
def navier_stokes(config: DiffusionFillConfig, device: str = "auto") -> DiffusionFill:
    return DiffusionFill(cv2.INPAINT_NS, config)
