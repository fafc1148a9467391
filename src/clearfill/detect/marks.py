"""Semi-transparent marks (watermarks, tiled stock-photo marks): the photo is still
there under them, so they are undone rather than painted over.

A mark drawn in one colour ``c`` at opacity ``a`` leaves ``I = (1 - alpha) P + alpha c``
where ``alpha`` is ``a`` inside the strokes and falls to 0 across their antialiased
edge. Given ``alpha`` and ``c`` the photo comes back exactly: ``P = (I - alpha c) /
(1 - alpha)``. Both are estimated from the image itself:

1. strokes: inside each faint text region, the pixels that a morphological top-hat
   (bright marks) or black-hat (dark marks) lifts clearly above the rest;
2. the background under them: the pixels around the strokes carried in (Telea);
3. ``a`` and ``c``: least squares over the stroke interiors of
   ``I - B = a (c - B)`` (linear in ``a`` and ``a c``), once, then again on the
   strokes that estimate finds;
4. ``alpha`` per pixel: the projection of ``I - B`` onto ``c - B``, clipped to
   ``[0, a]``, and exactly ``a`` in the stroke interiors.

The estimate is refused (the regions are then simply inpainted) when the opacity is
implausible or when undoing it would push many pixels out of range, the sign of a
wrong colour or opacity. Pixels that cannot be recovered well (the photo under them
saturated, or where the mark's colour equals the background's) are left to the fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..imaging import quantize

OPACITY_RANGE = (0.08, 0.8)  # outside it a "mark" is either invisible or nearly opaque (inpaint it)
MAX_OUT_OF_RANGE = 0.12  # share of stroke pixels that undoing may push outside [0, 1] before it is refused
MIN_COVERED = 0.12  # share of a faint region the mark's strokes must cover to account for its text
VISIBLE_ALPHA = 0.06
TRIMMED_FIT = 0.6  # the share of stroke samples the opacity and colour are fitted to  # below this a pixel is not part of the mark


@dataclass(frozen=True)
class Overlay:
    """A semi-transparent one-colour mark: per-pixel opacity and its colour."""

    alpha: np.ndarray  # float32 H x W in [0, opacity], 0 away from the mark
    colour: np.ndarray  # float32 (3,) RGB in [0, 1]
    opacity: float  # the strokes' opacity

    @property
    def covers(self) -> np.ndarray:
        """bool H x W: pixels the mark visibly changed."""
        return self.alpha >= VISIBLE_ALPHA

    def undo(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the photo recovered under the mark, bool H x W of pixels where it could
        not be: the value left the valid range, or the mark's colour there was too
        close to the background's to tell them apart)."""
        alpha = self.alpha[..., None]
        recovered = (rgb - alpha * self.colour) / (1.0 - alpha)
        overshoot = np.max(np.maximum(recovered - 1.0, -recovered), axis=2)
        unreliable = self.covers & (overshoot > 0.03)
        return np.clip(recovered, 0.0, 1.0).astype(np.float32), unreliable

    def describe(self) -> str:
        red, green, blue = (round(float(v) * 255) for v in self.colour)
        return f"a mark of colour ({red}, {green}, {blue}) at {self.opacity:.0%} opacity"


def find_overlay(rgb: np.ndarray, faint: np.ndarray) -> Overlay | None:
    """The semi-transparent mark inside the ``faint`` text regions (bool H x W), or
    None when they do not look like one. Bright and dark marks are both tried; the
    one whose undoing stays in range more often wins."""
    if not faint.any():
        return None
    gray = cv2.cvtColor(quantize(rgb), cv2.COLOR_RGB2GRAY)
    candidates = [_estimate(rgb, faint, strokes) for strokes in _strokes(gray, faint)]
    scored = [(share, overlay) for share, overlay in candidates if overlay is not None]
    if not scored:
        return None
    share, overlay = min(scored, key=lambda pair: pair[0])
    return overlay if share <= MAX_OUT_OF_RANGE else None


def _estimate(rgb: np.ndarray, faint: np.ndarray, strokes: np.ndarray) -> tuple[float, Overlay | None]:
    """(share of stroke pixels that undoing pushes out of range, the mark) for one
    guess at the strokes; the fit runs twice, the second time on the strokes the
    first one sees."""
    if strokes.sum() < 30:
        return 1.0, None
    estimate = _fit(rgb, strokes)
    if estimate is None:
        return 1.0, None
    opacity, colour, _ = estimate
    # every pixel of the regions against a background that does not depend on the
    # first guess: the photo with anything thinner than a stroke towards the mark's
    # colour taken away (opening for bright marks, closing for dark ones)
    width = 2 * int(cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 3).max()) + 3
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    bright = float(colour.mean()) > float(np.median(rgb[strokes]))
    underneath = cv2.morphologyEx(rgb, cv2.MORPH_OPEN if bright else cv2.MORPH_CLOSE, element)
    alpha = _alpha(rgb, underneath, opacity, colour) * _grow(faint, 3)
    strokes = _thin(alpha >= 0.5 * opacity)
    estimate = _fit(rgb, strokes) if strokes.sum() >= 30 else None
    if estimate is None:
        return 1.0, None
    opacity, colour, background = estimate
    alpha = _alpha(rgb, background, opacity, colour) * _grow(strokes, 2)
    alpha[_shrink(strokes, 1)] = opacity
    alpha[_grow(_unexplained(faint, alpha >= VISIBLE_ALPHA), 3)] = 0.0
    overlay = Overlay(alpha.astype(np.float32), colour.astype(np.float32), opacity)
    _, unreliable = overlay.undo(rgb)
    return float(unreliable[strokes].mean()), overlay if overlay.covers.any() else None


def _thin(strokes: np.ndarray) -> np.ndarray:
    """``strokes`` without the blobs much wider than a typical stroke (a bright rim or
    a highlight of the photo next to the letters, which moved towards the mark's
    colour for its own reasons)."""
    if not strokes.any():
        return strokes
    depth = cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 3)
    stroke_width = 4.0 * float(np.median(depth[strokes]))  # depth runs 0..w/2 across a stroke of width w
    side = int(round(1.6 * stroke_width)) | 1
    if side < 3:
        return strokes
    wide = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0
    return strokes & ~_grow(wide, 1)


def _unexplained(faint: np.ndarray, covers: np.ndarray) -> np.ndarray:
    """The faint regions whose text the mark does not account for (its strokes cover
    too little of them): they are left to the fill, whole."""
    count, labels = cv2.connectedComponents(faint.astype(np.uint8), connectivity=8)
    area = np.bincount(labels.ravel(), minlength=count)
    covered = np.bincount(labels[covers], minlength=count)
    explained = covered >= MIN_COVERED * area
    explained[0] = True
    return ~explained[labels]


def _strokes(gray: np.ndarray, faint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bright strokes, dark strokes): per faint region, the pixels its top-hat
    (black-hat) raises above Otsu's split; the structuring element is wider than a
    stroke, judged from the region's height."""
    bright_strokes, dark_strokes = np.zeros(faint.shape, bool), np.zeros(faint.shape, bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(faint.astype(np.uint8), connectivity=8)
    height, width = faint.shape
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        pad = max(w, h) // 4 + 4
        x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad)
        region = labels[y0:y1, x0:x1] == label
        half_height = float(cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3).max())
        side = int(max(7, 0.8 * half_height)) | 1
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        patch = gray[y0:y1, x0:x1]
        for operation, strokes in ((cv2.MORPH_TOPHAT, bright_strokes), (cv2.MORPH_BLACKHAT, dark_strokes)):
            lifted = cv2.morphologyEx(patch, operation, element)
            split, _ = cv2.threshold(lifted[region][:, None], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            strokes[y0:y1, x0:x1] |= region & (lifted > max(split, 4.0))
    return bright_strokes, dark_strokes


def _fit(rgb: np.ndarray, strokes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(opacity, colour, background estimate) from the stroke interiors, or None
    when the opacity is implausible."""
    around = _grow(strokes, 2)
    background = cv2.inpaint(quantize(rgb), around.astype(np.uint8), 5, cv2.INPAINT_TELEA).astype(np.float32) / 255
    interior = _shrink(strokes, 1)
    if interior.sum() < 20:
        interior = strokes
    change, under = (rgb - background)[interior], background[interior]
    opacity, grey = _vote(change, under)
    if not OPACITY_RANGE[0] <= opacity <= OPACITY_RANGE[1]:
        return None
    return opacity, np.full(3, grey, np.float32), background


def _vote(change: np.ndarray, under: np.ndarray) -> tuple[float, float]:
    """(opacity, grey level) that most stroke samples agree on. For each candidate
    grey ``g`` every sample gives its own opacity, the projection of ``I - B`` onto
    ``g - B``; with the right ``g`` the true strokes pile up at one value while photo
    detail taken for strokes scatters (a least-squares fit would follow it)."""
    best = (0, 0.0, 0.0)
    bins = np.arange(OPACITY_RANGE[0] - 0.1, OPACITY_RANGE[1] + 0.1, 0.01)
    for grey in np.linspace(0.0, 1.0, 21):
        towards = grey - under
        reach = np.sum(towards ** 2, axis=1)
        usable = reach > 3 * 0.15 ** 2  # the background far enough from the mark's colour to see it
        if usable.sum() < 20:
            continue
        opacities = np.sum(change * towards, axis=1)[usable] / reach[usable]
        counts, _ = np.histogram(opacities, bins)
        agreeing = np.convolve(counts, np.ones(5), "same")  # within +-0.02
        peak = int(np.argmax(agreeing))
        if agreeing[peak] > best[0]:
            best = (agreeing[peak], float(bins[peak] + 0.005), float(grey))
    return best[1], best[2]


def _alpha(rgb: np.ndarray, background: np.ndarray, opacity: float, colour: np.ndarray) -> np.ndarray:
    """Per pixel: how far ``rgb`` moved from the background towards the colour."""
    towards = colour[None, None] - background
    moved = np.sum((rgb - background) * towards, axis=2) / np.maximum(np.sum(towards ** 2, axis=2), 1e-3)
    return np.clip(moved, 0.0, opacity)


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0


def _shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0
