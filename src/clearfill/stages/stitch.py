"""Resize the result back to the crop and stitch it into the original image.

Only pixels where the blend mask is nonzero change; every other pixel of the
output is the input's, bit for bit (a VAE round trip would otherwise shift them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import imaging
from ..pipeline import Stage, State


@dataclass(frozen=True)
class StitchConfig:
    method: str = "lanczos"  # resampling from the working size back to the crop's

    def __post_init__(self) -> None:
        if self.method not in imaging.RESAMPLERS:
            raise ValueError(f"stitch.method must be one of {sorted(imaging.RESAMPLERS)}, got {self.method!r}")


def stitch(image: np.ndarray, crop, patch: np.ndarray) -> np.ndarray:
    """Composite ``patch`` (the crop's size) into a copy of ``image`` with the crop's blend mask."""
    out = image.copy()
    (image_rows, image_cols), (crop_rows, crop_cols) = crop.inside((image.shape[1], image.shape[0]))
    out[image_rows, image_cols] = imaging.composite(
        image[image_rows, image_cols], patch[crop_rows, crop_cols], crop.blend_mask[crop_rows, crop_cols]
    )
    return out


class StitchStage(Stage):
    name = "stitch"
    needs = ("image", "crop")
    uses = ("refined",)
    makes = ("output",)

    def __init__(self, config: StitchConfig):
        self.config = config

    def run(self, state: State) -> None:
        crop = state.crop
        if state.refined is not None:
            patch = imaging.resize(state.refined, crop.size, self.config.method)
            source = "refined crop"
        else:
            patch = crop.image  # no refiner ran: the removed fill at native size, not resampled twice
            source = "removed crop (no refinement)"
        state.output = stitch(state.image, crop, patch)
        state.notes[self.name] = f"stitched the {source}"

    def picture(self, state: State) -> np.ndarray:
        return state.output
