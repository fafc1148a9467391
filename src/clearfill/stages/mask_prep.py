"""Mask preparation: turn the user's mask into the hole every later stage fills."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import imaging
from ..errors import InvalidInputError
from ..options import check_range
from ..pipeline import Stage, State


@dataclass(frozen=True)
class MaskPrepConfig:
    """How the user's mask becomes a binary hole.

    threshold:       mask values >= threshold are "remove" (after ``invert``).
    invert:          swap remove and keep (for masks that mark what to keep).
    fill_holes:      close gaps enclosed by the mask (a ring becomes a disk).
    grow_pixels:     dilate the hole by a disk of this radius (negative erodes).
    blur_radius:     Gaussian sigma of a soft growth, the LaMa node's ``gaussblur_radius``:
                     the hole is blurred and pixels whose blurred value reaches
                     ``blur_threshold`` join it, so the object's fringe goes too.
    blur_threshold:  see blur_radius. The reference's mask_threshold 180 on the
                     inverted mask is 1 - 180/255 here.

    Unlike the reference node, the blur never drops a part of the user's mask (a
    thin stroke blurred below the threshold would vanish there): it only adds.
    """

    threshold: float = 0.5
    invert: bool = False
    fill_holes: bool = False
    grow_pixels: float = 0.0
    blur_radius: float = 0.0
    blur_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"mask.threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 < self.blur_threshold <= 1.0:
            raise ValueError(f"mask.blur_threshold must be in (0, 1], got {self.blur_threshold}")
        check_range("mask.grow_pixels", self.grow_pixels, -1024, 1024)
        check_range("mask.blur_radius", self.blur_radius, 0, 256)


def prepare_hole(mask: np.ndarray, config: MaskPrepConfig) -> np.ndarray:
    """H x W float mask -> H x W bool hole, following ``config``."""
    hole = mask >= config.threshold
    if config.invert:
        hole = ~hole
    if config.fill_holes:
        hole = imaging.fill_holes(hole)
    if config.grow_pixels:
        hole = imaging.grow(hole, config.grow_pixels)
    if config.blur_radius > 0 and hole.any():
        hole |= imaging.gaussian_blur(hole.astype(np.float32), config.blur_radius) >= config.blur_threshold
    return hole


class MaskPrepStage(Stage):
    name = "mask"
    needs = ("image", "mask")
    uses = ("unblended",)
    makes = ("hole",)

    def __init__(self, config: MaskPrepConfig):
        self.config = config

    def run(self, state: State) -> None:
        hole = prepare_hole(state.mask, self.config)
        if state.unblended is not None:  # recovered from under a mark: the photo itself, not a fringe to fill
            hole &= ~state.unblended
        if hole.all():
            raise InvalidInputError("mask covers the whole image: nothing is left to fill the hole from")
        state.hole = hole
        state.notes[self.name] = f"hole covers {hole.mean():.1%} of the image"

    def picture(self, state: State) -> np.ndarray:
        """The image dimmed, the hole in red."""
        shown = state.image * 0.5
        shown[state.hole] = (1.0, 0.15, 0.15)
        return shown
