"""The object-reappearance guard: how far a refinement departs from the removed fill.

A refiner at strength 0.8 should polish the remover's fill, not paint something
new into the hole. Each candidate is scored against the removed fill (both at the
working size, inside the refine mask):

- structure: mean difference of the two images blurred to low frequency (sigma =
  1% of the image's short side, at least 2 px), plus the mean difference of their
  edge strength at that scale: a new object brings new low-frequency shapes and
  edges, polish does not;
- colour: shift of the per-channel mean and spread;
- seam: gradient mismatch with the removed image across the mask's border.

Scores are computed at half the working size (where that is at least 64 px).

Lower is better; the total is structure + colour + seam (all in [0, 1] units).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import imaging


@dataclass(frozen=True)
class GuardScore:
    seed: int
    structure: float
    colour: float
    seam: float

    @property
    def total(self) -> float:
        return self.structure + self.colour + self.seam


def _edges(image: np.ndarray) -> np.ndarray:
    return imaging.gradient_magnitude(image) / 8


def _half(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (max(1, image.shape[1] // 2), max(1, image.shape[0] // 2)), interpolation=cv2.INTER_AREA)


def score(candidate: np.ndarray, removed: np.ndarray, mask: np.ndarray, seed: int) -> GuardScore:
    """Scored at half resolution: the departures that matter are low-frequency, and the
    guard then costs a few percent of even a tiny refiner's time."""
    if min(mask.shape) >= 64:
        candidate, removed, mask = _half(candidate), _half(removed), _half(mask.astype(np.float32))
    inside = mask > 0.5
    if not inside.any():
        return GuardScore(seed, 0.0, 0.0, 0.0)
    sigma = max(2.0, 0.01 * min(mask.shape))
    low_c, low_r = imaging.gaussian_blur(candidate, sigma), imaging.gaussian_blur(removed, sigma)
    structure = float(np.abs(low_c - low_r)[inside].mean() + np.abs(_edges(low_c) - _edges(low_r))[inside].mean())
    colour = float(np.abs(candidate[inside].mean(0) - removed[inside].mean(0)).mean()
                   + np.abs(candidate[inside].std(0) - removed[inside].std(0)).mean())
    ring = ~inside & (imaging.distance_outside(inside) <= 2) | (inside & (imaging.distance_outside(~inside) <= 2))
    seam = float(np.abs(_edges(candidate) - _edges(removed))[ring].mean()) if ring.any() else 0.0
    return GuardScore(seed, structure, colour, seam)
