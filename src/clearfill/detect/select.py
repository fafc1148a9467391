"""Selecting an object without painting it: a box, a loose lasso, or clicks, refined
by OpenCV's GrabCut (no weights).

The box's or lasso's inside is "probably the object", everything outside it
"certainly not"; a positive click marks a small disc as certainly the object, a
negative one as certainly not. With clicks alone, the image's border is taken as
background. GrabCut runs on a copy at most ``work_side`` pixels long (about a
second) and the mask is scaled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..imaging import quantize

CLICK_REACH = 0.08  # around a click given alone, this share of the short side is "probably the object"


@dataclass(frozen=True)
class Selection:
    box: tuple[int, int, int, int] | None = None  # x, y, width, height
    lasso: tuple[tuple[float, float], ...] | None = None  # polygon, image pixels
    points: tuple[tuple[float, float, bool], ...] = field(default_factory=tuple)  # x, y, positive?

    def __post_init__(self) -> None:
        if self.box is None and not self.lasso and not self.points:
            raise InvalidInputError("a selection needs a box, a lasso or at least one point")
        if self.box is not None and (len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0):
            raise InvalidInputError(f"a box is x, y, width, height with a positive size, got {self.box}")
        if self.lasso is not None and len(self.lasso) < 3:
            raise InvalidInputError("a lasso needs at least 3 points")


def _scaled(selection: Selection, scale: float) -> Selection:
    box = tuple(round(v * scale) for v in selection.box) if selection.box else None
    lasso = tuple((x * scale, y * scale) for x, y in selection.lasso) if selection.lasso else None
    points = tuple((x * scale, y * scale, positive) for x, y, positive in selection.points)
    return Selection(box if box is None else (*box[:2], max(1, box[2]), max(1, box[3])), lasso, points)


def _seed(shape: tuple[int, int], selection: Selection) -> np.ndarray:
    height, width = shape
    if selection.box is None and not selection.lasso:
        # clicks alone: around each positive click "probably the object", so GrabCut
        # learns its colours from more than a dot; the border certainly not
        seed = np.full(shape, cv2.GC_PR_BGD, np.uint8)
        seed[[0, -1], :] = cv2.GC_BGD
        seed[:, [0, -1]] = cv2.GC_BGD
        reach = max(4, round(CLICK_REACH * min(shape)))
        for x, y, positive in selection.points:
            if positive:
                cv2.circle(seed, (round(x), round(y)), reach, int(cv2.GC_PR_FGD), -1)
    else:
        seed = np.full(shape, cv2.GC_BGD, np.uint8)
        if selection.box is not None:
            x, y, w, h = selection.box
            seed[max(0, y):min(height, y + h), max(0, x):min(width, x + w)] = cv2.GC_PR_FGD
        if selection.lasso:
            inside = np.zeros(shape, np.uint8)
            cv2.fillPoly(inside, [np.round(np.asarray(selection.lasso)).astype(np.int32)], 1)
            seed[inside > 0] = cv2.GC_PR_FGD
    radius = max(3, round(0.01 * max(shape)))
    for x, y, positive in selection.points:
        cv2.circle(seed, (round(x), round(y)), radius, int(cv2.GC_FGD if positive else cv2.GC_BGD), -1)
    return seed


def select(rgb: np.ndarray, selection: Selection, *, iterations: int = 5, work_side: int = 800) -> np.ndarray:
    """bool H x W: the object ``selection`` points at on ``rgb`` (float32 RGB)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, work_side / max(height, width))
    small = cv2.resize(quantize(rgb), (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else quantize(rgb)
    seed = _seed(small.shape[:2], _scaled(selection, scale))
    if not np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        raise InvalidInputError("the selection lies outside the image")
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), seed, None, background, foreground, iterations,
                cv2.GC_INIT_WITH_MASK)
    found = np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1:
        found = cv2.resize(found, (width, height), interpolation=cv2.INTER_LINEAR)
    return _keep_selected(found > 0.5, selection)


def _keep_selected(found: np.ndarray, selection: Selection) -> np.ndarray:
    """Only the parts connected to what was pointed at: those under positive clicks
    and, for a box or lasso, its largest part (stray specks of similar colour
    elsewhere in the box are dropped; a click on a missed piece adds that piece)."""
    count, labels = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    if count <= 2:
        return found
    height, width = found.shape
    kept = {labels[min(height - 1, max(0, round(y))), min(width - 1, max(0, round(x)))]
            for x, y, positive in selection.points if positive} - {0}
    if selection.box is not None or selection.lasso or not kept:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        kept.add(int(sizes.argmax()))
    return np.isin(labels, list(kept))
