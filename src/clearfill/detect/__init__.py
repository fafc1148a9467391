"""Masks without painting: what to remove, found on the image itself.

``find_mask(image, detect="text")`` -> bool H x W. Detectors: ``text`` (captions,
credits, date stamps, watermarks; see ``detect.text``). ``select(image, box=...,
lasso=..., points=...)`` -> bool H x W: the object a box, a loose lasso or clicks
point at (GrabCut; see ``detect.select``).
"""

from __future__ import annotations

import numpy as np

from .. import io
from ..errors import InvalidConfigError, InvalidInputError
from .marks import Overlay
from .sam import SamSelector, sam_present
from .select import Selection
from .select import select as select_object
from .text import TextConfig, TextFinding, detect_text, find_text

DETECTORS = {"text": detect_text}
SELECTION_METHODS = ("auto", "grabcut", "sam")


def find(image, detect: str = "text", *, max_pixels: int | None = io.DEFAULT_MAX_PIXELS) -> TextFinding:
    """What ``detect`` finds on ``image`` (a path, open file, PIL image, array or
    ``io.LoadedImage``), upright as clearfill reads the image: the mask, and a
    semi-transparent mark among it that can be undone (``Overlay``) or None."""
    if detect not in DETECTORS:
        raise InvalidConfigError(f"unknown detector {detect!r}; choose from {', '.join(DETECTORS)}")
    source = image if isinstance(image, io.LoadedImage) else io.load_image(image, max_pixels=max_pixels)
    return DETECTORS[detect](source.rgb)


def find_mask(image, detect: str = "text", *, max_pixels: int | None = io.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """bool H x W: what ``detect`` finds on ``image`` (see ``find``)."""
    return find(image, detect, max_pixels=max_pixels).mask


def select(image, *, box=None, lasso=None, points=(), method: str = "auto", model: str = "sam2.1-hiera-tiny",
           max_pixels: int | None = io.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """bool H x W: the object that ``box`` (x, y, width, height), a loose ``lasso``
    (polygon of (x, y)) and/or ``points`` ((x, y, positive) clicks) point at.
    ``method``: "grabcut" (no weights), "sam" (SAM 2.1 ``model``: a registry name,
    a local folder or a Hugging Face repo id) or "auto" (SAM when its weights are
    here, else GrabCut)."""
    selection = as_selection({"box": box, "lasso": lasso, "points": points})
    source = image if isinstance(image, io.LoadedImage) else io.load_image(image, max_pixels=max_pixels)
    return select_with(source.rgb, selection, method, model)


def selector_for(method: str = "auto", model: str = "sam2.1-hiera-tiny") -> str:
    """Which selector ``method`` runs here: "sam" or "grabcut" (the weight-free one)."""
    if method not in SELECTION_METHODS:
        raise InvalidConfigError(f"unknown selection method {method!r}; choose from {', '.join(SELECTION_METHODS)}")
    return "sam" if method == "sam" or (method == "auto" and sam_present(model)) else "grabcut"


def select_with(rgb: np.ndarray, selection: Selection, method: str = "auto",
                model: str = "sam2.1-hiera-tiny") -> np.ndarray:
    """``select`` on float RGB pixels with a ready ``Selection``."""
    if selector_for(method, model) == "sam":
        height, width = rgb.shape[:2]
        return SamSelector.shared(model).select(rgb, selection.on_image(width, height))
    return select_object(rgb, selection)


def as_selection(value) -> Selection:
    """A Selection from one, or from a mapping with box / lasso / points (JSON-like)."""
    if isinstance(value, Selection):
        return value
    try:
        box = tuple(int(v) for v in value["box"]) if value.get("box") is not None else None
        lasso = tuple((float(x), float(y)) for x, y in value["lasso"]) if value.get("lasso") else None
        points = tuple((float(p[0]), float(p[1]), bool(p[2]) if len(p) > 2 else True)
                       for p in value.get("points") or ())
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
        raise InvalidInputError("a selection is box [x, y, w, h], lasso [[x, y], ...] and/or points "
                                "[[x, y, positive], ...]") from None
    return Selection(box, lasso, points)


__all__ = ["DETECTORS", "SELECTION_METHODS", "Overlay", "SamSelector", "Selection", "TextConfig", "TextFinding",
           "as_selection", "detect_text", "find", "find_mask", "find_text", "select", "select_with", "selector_for"]
