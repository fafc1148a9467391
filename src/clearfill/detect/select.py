"""Selecting an object without painting it: a box, a loose lasso, or clicks, refined
by OpenCV's GrabCut (no weights).

The box's or lasso's inside is "probably the object", everything outside it
"certainly not"; a positive click marks a small disc as certainly the object, a
negative one as certainly not. With clicks alone, the image's border is taken as
background, and a selection that then looks like background (a large share of the
image: the sky around a kite, the wall behind a grinder) is tried again from a
tighter disc, kept unless it found nothing past the clicks' certain discs, or looks
like background too and is no smaller. GrabCut runs on a copy at most ``work_side``
pixels long (about a second per try) and the mask is scaled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..imaging import quantize, seeded_opencv

CLICK_REACH = 0.08  # around a click given alone, this share of the short side is "probably the object"
TIGHT_CLICK_REACH = 0.03  # the second try's, when the first looks like background
# A click's selection looks like background past this share of the image. Measured on 21 hand-outlined
# objects x 5 user clicks (benchmarks/selection_quality.py) and on the same objects pasted at random
# sizes and places onto other bench photos (two seeds), with the retry: mean IoU .568 -> .590,
# .788 -> .801, .805 -> .809; selections over twice the object 22 -> 17, 14 -> 12, 10 -> 8 of 105.
BACKGROUND_SHARE = 0.15
GMM_COMPONENTS = 5  # GrabCut models the object and the background with this many Gaussians each,
# so it needs at least as many pixels of each to start from
LASSO_REACH = 1.0  # a lasso may stray this many image sizes past the image (a stroke dragged off it)


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
        numbers = [*(self.box or ()), *(v for point in self.lasso or () for v in point),
                   *(v for x, y, _ in self.points for v in (x, y))]
        if not all(math.isfinite(v) for v in numbers):
            raise InvalidInputError("a selection's coordinates must be finite numbers")

    def on_image(self, width: int, height: int) -> Selection:
        """This selection checked against a ``width`` x ``height`` image: clicks on it, a
        lasso near it, and the box cut to it (all cheap, whatever numbers arrived)."""
        for x, y, _ in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise InvalidInputError(f"a click at ({x:g}, {y:g}) lies outside the image ({width}x{height})")
        for x, y in self.lasso or ():
            if not (-LASSO_REACH * width <= x <= (1 + LASSO_REACH) * width
                    and -LASSO_REACH * height <= y <= (1 + LASSO_REACH) * height):
                raise InvalidInputError(f"a lasso point at ({x:g}, {y:g}) lies far outside the image "
                                        f"({width}x{height})")
        box = self.box
        if box is not None:
            x0, y0 = max(0, box[0]), max(0, box[1])
            x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
            if x1 <= x0 or y1 <= y0:
                raise InvalidInputError(f"the box {box} lies outside the image ({width}x{height})")
            box = (x0, y0, x1 - x0, y1 - y0)
        return Selection(box, self.lasso, self.points)


def _scaled(selection: Selection, scale: float) -> Selection:
    box = tuple(round(v * scale) for v in selection.box) if selection.box else None
    lasso = tuple((x * scale, y * scale) for x, y in selection.lasso) if selection.lasso else None
    points = tuple((x * scale, y * scale, positive) for x, y, positive in selection.points)
    return Selection(box if box is None else (*box[:2], max(1, box[2]), max(1, box[3])), lasso, points)


def _seed(shape: tuple[int, int], selection: Selection, reach_share: float = CLICK_REACH) -> np.ndarray:
    height, width = shape
    if _clicks_alone(selection):
        # clicks alone: around each positive click "probably the object", so GrabCut
        # learns its colours from more than a dot; the border certainly not
        seed = np.full(shape, cv2.GC_PR_BGD, np.uint8)
        seed[[0, -1], :] = cv2.GC_BGD
        seed[:, [0, -1]] = cv2.GC_BGD
        reach = max(4, round(reach_share * min(shape)))
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
    certain = _certain_click(shape, selection)
    seed[certain == 1] = cv2.GC_FGD
    seed[certain == 2] = cv2.GC_BGD
    return seed


def _certain_click(shape: tuple[int, int], selection: Selection) -> np.ndarray:
    """uint8: 1 on a small disc at each positive click (certainly the object), 2 at each
    negative one (certainly not), 0 elsewhere; a later click's disc over an earlier's."""
    certain = np.zeros(shape, np.uint8)
    radius = max(3, round(0.01 * max(shape)))
    for x, y, positive in selection.points:
        cv2.circle(certain, (round(x), round(y)), radius, 1 if positive else 2, -1)
    return certain


def select(rgb: np.ndarray, selection: Selection, *, iterations: int = 5, work_side: int = 800) -> np.ndarray:
    """bool H x W: the object ``selection`` points at on ``rgb`` (float32 RGB)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, work_side / max(height, width))
    small = cv2.resize(quantize(rgb), (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else quantize(rgb)
    scaled = _scaled(selection.on_image(width, height), scale)
    seed = _seed(small.shape[:2], scaled)
    _check_seed(seed)
    found = _keep_selected(_grabcut(small, seed, iterations), scaled)
    if _clicks_alone(scaled) and _looks_like_background(found):
        tighter = _keep_selected(_grabcut(small, _seed(small.shape[:2], scaled, TIGHT_CLICK_REACH), iterations),
                                 scaled)
        found_anything = tighter.sum() > 2 * (_certain_click(small.shape[:2], scaled) > 0).sum()
        if found_anything and (not _looks_like_background(tighter) or tighter.sum() < found.sum()):
            found = tighter
    if scale < 1:
        found = cv2.resize(found.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
        found = _keep_selected(found, selection)
    return found


def _grabcut(small: np.ndarray, seed: np.ndarray, iterations: int) -> np.ndarray:
    """bool: what GrabCut takes for the object on uint8 RGB ``small`` from ``seed``."""
    seed = seed.copy()
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    seeded_opencv(cv2.grabCut, np.ascontiguousarray(small[..., ::-1]), seed, None, background, foreground,
                  iterations, cv2.GC_INIT_WITH_MASK)
    return np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _clicks_alone(selection: Selection) -> bool:
    return selection.box is None and not selection.lasso


def _looks_like_background(found: np.ndarray) -> bool:
    return found.mean() > BACKGROUND_SHARE


def _check_seed(seed: np.ndarray) -> None:
    """GrabCut learns the object's colours from the pixels seeded as object and the
    background's from the rest: it needs enough of both."""
    height, width = seed.shape
    if seed.size < 2 * GMM_COMPONENTS:
        raise InvalidInputError(f"the image is {width}x{height} pixels: too small to select an object on")
    on_object = int(np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).sum())
    if on_object == 0:
        raise InvalidInputError("the selection lies outside the image")
    if seed.size - on_object < GMM_COMPONENTS:
        raise InvalidInputError("the selection covers the whole image, so nothing shows what the background looks "
                                "like: leave a margin around the object")
    if on_object < GMM_COMPONENTS:
        raise InvalidInputError("the selection is too small to learn the object's colours from")


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
