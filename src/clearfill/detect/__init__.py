"""Masks without painting: what to remove, found on the image itself.

``find_mask(image, detect="text")`` -> bool H x W. Detectors: ``text`` (captions,
credits, date stamps, watermarks; see ``detect.text``).
"""

from __future__ import annotations

import numpy as np

from .. import io
from ..errors import InvalidConfigError
from .text import TextConfig, find_text

DETECTORS = {"text": find_text}


def find_mask(image, detect: str = "text", *, max_pixels: int | None = io.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """bool H x W: what ``detect`` finds on ``image`` (a path, open file, PIL image,
    array or ``io.LoadedImage``), upright as clearfill reads the image."""
    if detect not in DETECTORS:
        raise InvalidConfigError(f"unknown detector {detect!r}; choose from {', '.join(DETECTORS)}")
    source = image if isinstance(image, io.LoadedImage) else io.load_image(image, max_pixels=max_pixels)
    return DETECTORS[detect](source.rgb)


__all__ = ["DETECTORS", "TextConfig", "find_mask", "find_text"]
