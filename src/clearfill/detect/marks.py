"""Semi-transparent marks (watermarks, tiled stock-photo marks): the photo is still
there under them, so they are undone rather than painted over.

A mark drawn in one colour ``c`` at opacity ``a`` leaves ``I = (1 - alpha) P + alpha c``
where ``alpha`` is ``a`` inside the strokes and falls to 0 across their antialiased
edge. Given ``alpha`` and ``c`` the photo comes back exactly: ``P = (I - alpha c) /
(1 - alpha)``. Both are estimated from the image itself:

1. strokes: inside each faint text region, the pixels that a morphological top-hat
   (bright marks) or black-hat (dark marks) lifts clearly above the rest;
2. the background under them: the pixels around the strokes carried in (Telea);
3. ``a`` and a grey ``c``: a vote of the stroke pixels (each one's own opacity for
   every candidate grey; the true strokes agree, photo detail scatters), then made
   precise: the pair whose undoing makes the strokes' rim continue the photo around;
4. the strokes again, from every pixel's opacity against the photo with anything
   thinner than a stroke opened away, blobs wider than a stroke dropped;
5. ``alpha`` per pixel: exactly ``a`` in the stroke interiors, 0 beyond their
   antialiased edge, and across the edge the projection of ``I - B`` onto ``c - B``
   with ``B`` carried in from both sides of the edge: the photo outside, the
   interiors undone (clipped to ``[0, 1.25 a]``: a rotated, resampled mark rings).

A mark with several copies (a tiled stock-photo mark) is then followed to the copies
the text detector missed: its cleanest piece is matched against the whole photo,
the copies averaged and matched again, and snapped to the lattice they lie on; on
a lattice, its alpha is one stamp (the per-pixel median of the copies' alpha) placed
at every copy. The mark is also followed into other text regions it explains
(its letters over dark or busy ground look like opaque text to the detector) when
its strokes there show the mark's one opacity (texture moved towards its colour does
not), and, with ``follow``, into the lines a picture of its own evidence shows: the
whole of each line is estimated again, and a single mark takes in the pixels along
them that moved straight towards its colour by its opacity. A mark over half opaque
stands out like opaque text: when no faint region holds it, it is looked for among
the clear regions too.

The estimate is refused (the regions are then simply inpainted) when the opacity is
implausible, when undoing it would push many pixels out of range (a wrong colour or
opacity), or when the undone strokes still stand out (opaque text taken for a faint
mark); one found among clear regions also when its strokes are not those regions'
text or do not show one opacity (a caption's outline, a credit's soft shadow).
Pixels that cannot be recovered well (the photo under them saturated, or where the
mark's colour equals the background's) are left to the fill.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np

from ..imaging import quantize, share_covered

OPACITY_RANGE = (0.08, 0.8)  # outside it a "mark" is either invisible or nearly opaque (inpaint it)
MAX_OUT_OF_RANGE = 0.12  # share of stroke pixels that undoing may push outside [0, 1] before it is refused
MIN_COVERED = 0.12  # share of a faint region the mark's strokes must cover to account for its text
MIN_EXPLAINED = 0.8  # share of another region's text strokes the mark must cover to account for them
MAX_ASIDE = 0.6  # a pixel moved towards the mark's colour when it moved aside that line under this share as far
STEADY_TOLERANCE = 0.2  # a stroke pixel shows the mark's opacity when it moved by it within this share
STEADY_OVERSHOOT = 0.5  # a pixel along the mark's lines shows it moving by up to this share more (_shows_opacity)
MIN_STEADY = 0.4  # share of another region's strokes that must show the mark's own opacity (_steady)
MIN_STRONG_EXPLAINED = 0.6  # share of opaque-looking text strokes a strong mark must cover (_strong_mark)
MIN_STRONG_STEADY = 0.7  # share of its stroke interiors that must show its one opacity
MIN_STEADY_COPY = 0.3  # the same for a copy of a mark whose copies lie on no lattice
VISIBLE_ALPHA = 0.06  # below this a pixel is not part of the mark
MAX_LEFT_VISIBLE = 0.5  # undone strokes may keep at most this share of their contrast with the photo
MAX_LEFT_EXPLAINED = 0.6  # the same, for another region's strokes (they must also be steady: MIN_STEADY)
COPY_EVIDENCE = 0.5  # median opacity along a copy's strokes, as a share of the mark's, for it to count
MAX_CHANCE_EVIDENCE = 0.005  # share of a median copy the photo alone may pass as the mark (_whole_copy)
MAX_CHANCE_LEVEL = 0.9  # the evidence, as a share of the opacity, photo texture must stay under in _whole_copy
MAX_CHANCE_LETTERS = 0.05  # share of a median copy's letters the photo alone may pass as the mark's (_whole_copy)
MAX_OUT_OF_RANGE_REPEATED = 0.3  # with opacity and colour known, out-of-range pixels are just left to the fill
REPEAT_SCORE = 0.35  # normalised correlation with the mark's best copy that counts as another copy
MIN_LATTICE_COPIES = 6  # copies found before the rest of a lattice is filled in
LATTICE_TOLERANCE = 3.0  # pixels a copy may sit off its lattice point
GAP_EVIDENCE = 0.25  # median opacity along a lattice copy's strokes, share of the mark's, for it to count
HIDDEN_CHANGE = 4 / 255  # the most a mark changes a pixel of the ground where it cannot be seen
TEMPLATE_CANDIDATES = 6  # pieces of the mark tried as the template for the repeat search
MIN_RIM = 0.15  # share of stroke pixels wholly inside the strokes before the opacity is refined on them
INTERPOLATION = cv2.INTER_CUBIC  # sub-pixel shifts of a stamp: linear softens its edges into a halo
MIN_STAMP_COPIES = 5  # copies wholly inside the photo before their median stands for the mark
MAX_COPY_OVERLAP = 0.1  # share of copies' strokes that may overlap another copy's (a piece of one copy)
MIN_PIECE_SHARE = 0.25  # of the mark's largest piece: smaller pieces are letters, never whole copies
TYPICAL_STROKE = 95  # percentile of stroke depths: the typical stroke's, a blob's left out
MIN_COPIES = 4  # matches (the template's own included) before a mark is taken for a tiled one
CORE_DEPTH = 2.0  # pixels inside the strokes' half-opacity edge beyond which alpha is the mark's opacity
EDGE_REACH = 1.5  # pixels outside that edge beyond which the antialiasing has no alpha left
MIN_TURN = 10.0  # degrees a mark's lines run off level before the detector is also shown them level (follow)
EDGE_OVERSHOOT = 1.25  # a mark rotated and resampled rings: along its edge alpha may pass its opacity by this much


@dataclass(frozen=True)
class Overlay:
    """A semi-transparent one-colour mark: per-pixel opacity and its colour."""

    alpha: np.ndarray  # float32 H x W: the opacity in the strokes, up to 1.25x it along a ringing edge, 0 away
    colour: np.ndarray  # float32 (3,) RGB in [0, 1]
    opacity: float  # the strokes' opacity
    repeated: bool = False  # a tiled mark, found at several copies

    @property
    def covers(self) -> np.ndarray:
        """bool H x W: pixels the mark visibly changed."""
        return self.alpha >= VISIBLE_ALPHA

    @property
    def strokes(self) -> np.ndarray:
        """bool H x W: the strokes, inside their half-opacity edge."""
        return self.alpha >= 0.5 * self.opacity

    @property
    def reach(self) -> np.ndarray:
        """bool H x W: pixels holding any of the mark: the visible ones, and the faint
        antialiasing along its strokes' edges (a trace of alpha elsewhere is the estimate's noise)."""
        return self.covers | ((self.alpha > 0) & _grow(self.strokes, int(np.ceil(EDGE_REACH))))

    def undo(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the photo recovered under the mark where it reaches (elsewhere ``rgb`` as
        it is), bool H x W of visibly marked pixels where it could not be:
        the value left the valid range, or the mark's colour there was too close to
        the background's to tell them apart)."""
        reach = self.reach
        box = _window(reach)  # the rest is the photo as it is
        alpha, marked = self.alpha[box][..., None], rgb[box]
        recovered = rgb.copy()
        recovered[box] = np.where(reach[box][..., None], (marked - alpha * self.colour) / (1.0 - alpha), marked)
        overshoot = np.max(np.maximum(recovered[box] - 1.0, -recovered[box]), axis=2)
        unreliable = np.zeros(reach.shape, bool)
        unreliable[box] = self.covers[box] & (overshoot > 0.03)
        return np.clip(recovered, 0.0, 1.0).astype(np.float32), unreliable

    def describe(self) -> str:
        red, green, blue = (round(float(v) * 255) for v in self.colour)
        return f"a mark of colour ({red}, {green}, {blue}) at {self.opacity:.0%} opacity"


class _Reading(NamedTuple):
    """One reading of the strokes as a mark, and how well undoing it works."""

    out_of_range: float  # share of stroke pixels that undoing pushes out of range (1: no reading)
    overlay: Overlay | None
    strokes: np.ndarray
    contrast_left: float = 1.0  # share of the marked pixels' contrast left once undone (0: gone)


def find_overlay(rgb: np.ndarray, faint: np.ndarray, regions: np.ndarray | None = None,
                 strokes: np.ndarray | None = None, shown: np.ndarray | None = None) -> Overlay | None:
    """The semi-transparent mark inside the ``faint`` text regions (bool H x W), or
    None when they do not look like one. Its strokes are looked for on ``shown``
    (uint8 H x W, a picture the mark stands out on; the photo's grey by default).
    Bright and dark marks are both tried; of
    those whose undoing stays in range, the one whose strokes vanish best wins. A
    mark repeated across the photo (a tiled stock-photo mark) is then followed to the
    copies the text detector missed, and to the other text ``regions`` whose text
    ``strokes`` it explains (letters of the mark over dark or busy ground stand out
    like opaque text)."""
    overlay = _mark(rgb, faint, shown)
    if regions is None or strokes is None:
        return overlay
    if overlay is not None:
        overlay = _explain(rgb, _untouched(regions, overlay.covers), strokes, overlay)
    # a mark over half opaque stands out like opaque text: look for one among the regions still unexplained
    left = regions if overlay is None else _untouched(regions, overlay.covers)
    strong = _strong_mark(rgb, left, strokes)
    if strong is not None and (overlay is None or strong.covers.sum() > overlay.covers.sum()):
        return strong
    return overlay


def _untouched(regions: np.ndarray, covers: np.ndarray) -> np.ndarray:
    """The text regions the mark's strokes cover too little of to account for their text."""
    return regions & (share_covered(regions, covers) < MIN_COVERED)


def _strong_mark(rgb: np.ndarray, regions: np.ndarray, strokes: np.ndarray) -> Overlay | None:
    """The mark among text regions whose strokes stand out like opaque text, or None.
    Opaque text read as a mark fails one of two tests a mark passes: its strokes
    are the regions' text (not a caption's outline or a credit's shadow beside it),
    and they moved by one opacity (not a colour the photo's own shading varies)."""
    if not (regions & strokes).any():
        return None
    overlay = _mark(rgb, regions)
    if overlay is None:
        return None
    touched = regions & (share_covered(regions, overlay.covers) > 0)
    interiors = _shrink(overlay.alpha >= overlay.opacity, 1)
    if not interiors.any():  # no stroke wide enough to show one opacity
        return None
    width = _stroke_width(overlay.covers)  # the evidence's ground reaches a stroke's width
    moved = _only_at(interiors, lambda box: _moved_evidence(rgb[box], overlay.colour, width), pad=width)
    if (_share(overlay.covers, strokes & touched) >= MIN_STRONG_EXPLAINED
            and _steady(moved[interiors], overlay.opacity) >= MIN_STRONG_STEADY):
        return overlay
    return None


def _mark(rgb: np.ndarray, faint: np.ndarray, shown: np.ndarray | None = None) -> Overlay | None:
    if not faint.any():
        return None
    gray = cv2.cvtColor(quantize(rgb), cv2.COLOR_RGB2GRAY) if shown is None else shown
    # on another picture than the photo's, the strokes are the mark's alone: the photo's own bright or dark
    # detail also moved towards the mark's colour, and is not taken in again
    readings = [_estimate(rgb, faint, strokes, confined=shown is not None) for strokes in _strokes(gray, faint)]
    plausible = [r for r in readings if r.overlay is not None and r.out_of_range <= MAX_OUT_OF_RANGE]
    if not plausible:
        return None
    best = min(plausible, key=lambda reading: reading.contrast_left)
    # chosen on the vote's estimate (a refusal must not depend on fine-tuning), then made precise
    sharp = _overlay(rgb, faint, best.strokes, sharpen=True)
    if sharp.overlay is not None and sharp.out_of_range <= MAX_OUT_OF_RANGE:
        best = sharp
    repeats = _repeats(rgb, best.overlay)
    if repeats is None:
        return _settled(rgb, best.overlay)
    corners, basis, shape = repeats
    copies = np.zeros(faint.shape, bool)
    for x, y in corners:
        _paste(copies, shape, int(round(x)), int(round(y)))
    if not (copies & ~_grow(best.strokes, 2)).any():
        return _settled(rgb, best.overlay)
    repeated = _overlay(rgb, faint, best.strokes | _grow(copies, 1), known=best.overlay)
    if repeated.overlay is None or repeated.out_of_range > MAX_OUT_OF_RANGE_REPEATED:
        return _settled(rgb, best.overlay)
    settled = replace(_settled(rgb, repeated.overlay), repeated=True)
    return _stamped(settled, corners, shape.shape) if basis is not None else settled


def _settled(rgb: np.ndarray, overlay: Overlay, rounds: int = 2) -> Overlay:
    """``overlay`` with the alpha across its strokes' antialiased edges estimated
    again against the photo on both sides of the edge: outside, the photo as it is;
    inside, the strokes' interiors undone at the mark's opacity. A band a few
    pixels wide is then carried in from both sides, far closer to the truth than the
    photo around the strokes carried in from outside alone (busy ground under a
    letter's edge read as the mark and undone left an outline of every letter).
    Pixels beyond the edge get no alpha; those deep inside get the mark's opacity."""
    opacity, colour = overlay.opacity, overlay.colour
    alpha, near = overlay.alpha, _grow(overlay.alpha > 0, 1)
    for _ in range(rounds):
        strokes = (alpha >= 0.5 * opacity).astype(np.uint8)
        inside = cv2.distanceTransform(strokes, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) > CORE_DEPTH
        edge = near & ~inside & (cv2.distanceTransform(1 - strokes, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= EDGE_REACH)
        background = _carried_in(_undone_in(rgb, inside, overlay), edge)
        ringing = _only_at(edge, lambda box, background=background: _alpha(
            rgb[box], background[box], min(EDGE_OVERSHOOT * opacity, 0.95), colour))
        alpha = np.where(inside, opacity, ringing)
    return Overlay(alpha.astype(np.float32), colour, opacity)


def _stamped(overlay: Overlay, corners: list[tuple[float, float]], size: tuple[int, int]) -> Overlay:
    """A tiled mark's alpha with one stamp at its copies: the per-pixel median of
    the copies' alpha (the photo under each copy differs, the mark does not), placed
    back at every copy with sub-pixel precision. Where too few copies lie in the
    photo to take a median, and outside the copies' boxes (the rest of a mark they
    were found by a piece of), ``overlay``'s own alpha stays."""
    h, w = size
    margin = 3  # the antialiased edge around the strokes
    stamp = _median_of_copies(overlay.alpha, corners, (-margin, -margin), (h + 2 * margin, w + 2 * margin))
    seen = np.isfinite(stamp)
    stamp = np.where(seen, stamp, 0.0).clip(0.0, overlay.opacity).astype(np.float32)
    alpha, boxes = np.zeros_like(overlay.alpha), np.zeros(overlay.alpha.shape, bool)
    for x, y in corners:
        _place(alpha, stamp, x - margin, y - margin)
        _paste(boxes, seen, int(round(x - margin)), int(round(y - margin)))
    return replace(overlay, alpha=np.where(boxes, alpha, overlay.alpha))


def _median_of_copies(picture: np.ndarray, corners: list[tuple[float, float]], offset: tuple[float, float],
                      box: tuple[int, int]) -> np.ndarray:
    """float32 ``box`` (h, w): the per-pixel median of ``picture`` (float32 H x W) over
    the boxes at each copy's corner plus ``offset``, sampled with sub-pixel precision;
    NaN where fewer than MIN_STAMP_COPIES of them lie in the photo."""
    h, w = box
    stack = np.stack([cv2.warpAffine(picture, np.float32([[1, 0, -x - offset[0]], [0, 1, -y - offset[1]]]), (w, h),
                                     flags=INTERPOLATION, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
                      for x, y in corners])
    seen = np.isfinite(stack).sum(axis=0) >= MIN_STAMP_COPIES
    median = np.full(box, np.nan, np.float32)
    if seen.any():
        median[seen] = np.nanmedian(stack[:, seen], axis=0)
    return median


def _place(canvas: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """``canvas = max(canvas, patch)`` with the patch's corner at the sub-pixel
    point (x, y), clipped to the canvas."""
    left, top = int(np.floor(x)), int(np.floor(y))
    h, w = patch.shape
    shifted = cv2.warpAffine(patch, np.float32([[1, 0, x - left], [0, 1, y - top]]), (w + 1, h + 1),
                             flags=INTERPOLATION)
    rows, cols = canvas.shape
    x0, y0, x1, y1 = max(0, left), max(0, top), min(cols, left + w + 1), min(rows, top + h + 1)
    if x1 > x0 and y1 > y0:
        region = canvas[y0:y1, x0:x1]
        np.maximum(region, shifted[y0 - top:y1 - top, x0 - left:x1 - left], out=region)


def follow(rgb: np.ndarray, overlay: Overlay, find_text: Callable[[np.ndarray], np.ndarray]) -> Overlay:
    """``overlay`` followed into the text regions ``find_text`` (uint8 RGB picture ->
    bool H x W regions) sees on a picture of the mark's evidence: how far each pixel
    moved towards the mark's colour, as a share of its opacity. The photo's colours
    and shading drop out there, so letters of the mark that hid in busy ground stand
    out (the picture is also shown turned level along the mark: the detector misses
    words of a steep line). It takes the whole of each region: the letters of a line
    the photo's detector found only some of, and the parts of letters it missed (over ground
    the mark's colour hardly moved). A tiled mark's copies are complete already (a
    copy of its best piece): it takes only what lies beyond them."""
    width, opacity = _stroke_width(overlay.covers), overlay.opacity
    underneath = _underneath(rgb, overlay.colour, width)
    moved = _moved(rgb, underneath, overlay.colour)
    grey = np.round(np.clip(moved / opacity, 0.0, 1.0) * 255).astype(np.uint8)
    regions = _seen_level(find_text, np.repeat(grey[..., None], 3, axis=2), overlay.covers, width)
    touched = share_covered(regions, overlay.covers) >= MIN_COVERED
    candidates = regions & ~(touched & _grow(overlay.covers, width)) if overlay.repeated else regions
    followed = _explain(rgb, candidates, _thin((moved >= 0.5 * opacity) & candidates), overlay)
    if overlay.repeated:
        return followed
    # the pixels of those lines that moved straight towards its colour by its own opacity are its too (parts
    # of letters over ground where the estimates above read them as photo); specks of texture that did so
    # alone are not
    strokes = followed.strokes
    held = regions & (share_covered(regions, followed.covers) >= MIN_COVERED)  # lines the mark is seen on
    marked = _with_steady(strokes, held & _moved_as_mark(rgb, underneath, overlay, moved), width)
    edge = np.where(_grow(marked, 2), followed.alpha, 0.0)  # the antialiased edge as estimated
    taken = _settled(rgb, replace(followed, alpha=_strokes_and_edge(marked, edge, opacity)))
    return _without_holes(_made_precise(rgb, _continued(rgb, taken, held, width)))


def _continued(rgb: np.ndarray, overlay: Overlay, lines: np.ndarray, width: int) -> Overlay:
    """``overlay`` with the pixels beside its strokes (within half of ``width``) that
    moved straight towards its colour by its opacity, judged against the ground
    carried into that band from both sides: the photo beyond it, the strokes undone
    inside. The photo opened or closed (``_underneath``) keeps as ground a letter's
    junction wider than a stroke, and a dark mark's letter where it meets dark ground;
    carried in, the ground is the photo's around them. Only along its ``lines``, and
    half a stroke past them (a capital's or a descender's tip outside the detector's line)."""
    strokes = overlay.strokes
    band = _grow(strokes, width // 2) & ~strokes & _grow(lines, width // 2)
    if not band.any():
        return overlay
    ground = _carried_in(_undone_in(rgb, strokes, overlay), band)
    marked = _with_steady(strokes, band & _moved_as_mark(rgb, ground, overlay), width)
    return replace(overlay, alpha=_strokes_and_edge(marked, overlay.alpha, overlay.opacity))


def _moved_as_mark(rgb: np.ndarray, ground: np.ndarray, overlay: Overlay,
                   moved: np.ndarray | None = None) -> np.ndarray:
    """bool H x W: the pixels that moved from ``ground`` straight towards the mark's
    colour by its opacity (``moved``: how far, when known already)."""
    moved = _moved(rgb, ground, overlay.colour) if moved is None else moved
    return _shows_opacity(moved, overlay.opacity) & _towards(rgb, ground, overlay.colour, moved)


def _with_steady(strokes: np.ndarray, steady: np.ndarray, width: int) -> np.ndarray:
    """``strokes`` with the ``steady`` pixels (moved as the mark) that touch them or make
    pieces of a quarter of a ``width`` stroke's square: specks of texture moved alone."""
    return strokes | _without_specks(strokes | steady, width ** 2 // 4)


def _undone_in(rgb: np.ndarray, pixels: np.ndarray, overlay: Overlay) -> np.ndarray:
    """``rgb`` with ``pixels`` (bool H x W) undone at the mark's full opacity."""
    undone = rgb.copy()
    undone[pixels] = (rgb[pixels] - overlay.opacity * overlay.colour) / (1.0 - overlay.opacity)
    return undone


def _carried_in(picture: np.ndarray, pixels: np.ndarray, radius: int = 3) -> np.ndarray:
    """float32 ``picture`` with ``pixels`` (bool H x W) carried in from around them (Telea)."""
    return cv2.inpaint(quantize(picture), pixels.astype(np.uint8), radius, cv2.INPAINT_TELEA).astype(np.float32) / 255


def _direction(covers: np.ndarray, stroke: int) -> float:
    """The angle in degrees (image axes, y down) of the long axis of the mark's
    largest piece, its letters joined across twice ``stroke``: the way its lines run."""
    joined = cv2.dilate(covers.astype(np.uint8), np.ones((2 * stroke + 1,) * 2, np.uint8))
    count, labels = cv2.connectedComponents(joined, connectivity=8)
    if count < 2:
        return 0.0
    largest = 1 + int(np.argmax(np.bincount(labels[covers], minlength=count)[1:]))
    ys, xs = np.nonzero(covers & (labels == largest))
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    _, axes = np.linalg.eigh(np.cov(points, rowvar=False))
    dx, dy = axes[:, 1]
    return float(np.degrees(np.arctan2(dy, dx)) + 90.0) % 180.0 - 90.0


def _seen_level(find_text: Callable[[np.ndarray], np.ndarray], picture: np.ndarray, covers: np.ndarray,
                stroke: int) -> np.ndarray:
    """bool H x W: the text regions ``find_text`` sees on ``picture``; for a mark whose
    lines run steeply (``covers``, strokes ``stroke`` wide), also the lines it holds as
    seen on the picture turned so that they run level (the detector misses the words of
    a steep line), turned back. Only the mark's lines: the photo turned shows other
    things the detector takes for text."""
    regions = find_text(picture)
    angle = _direction(covers, stroke)
    if abs(angle) < MIN_TURN:
        return regions
    height, width = picture.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    size = (int(np.ceil(height * sin + width * cos)), int(np.ceil(height * cos + width * sin)))
    turn[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
    level = find_text(cv2.warpAffine(picture, turn, size)).astype(np.uint8)
    lines = cv2.warpAffine(level, cv2.invertAffineTransform(turn), (width, height), flags=cv2.INTER_NEAREST) > 0
    return regions | (lines & (share_covered(lines, covers) >= MIN_COVERED))


def _made_precise(rgb: np.ndarray, overlay: Overlay) -> Overlay:
    """``overlay`` with its opacity and colour made precise again (``_sharpen``) on
    its final strokes: the first were judged on the strokes of the regions the photo's
    detector saw, photo detail taken for the mark among them, and the mark's letters
    found since are more of it to judge by. The antialiased edge is scaled along."""
    strokes = overlay.strokes
    opacity, grey = _sharpen(rgb, _background(rgb, strokes), strokes, overlay.opacity, float(overlay.colour.mean()))
    alpha = _strokes_and_edge(strokes, overlay.alpha * (opacity / overlay.opacity), opacity)
    return _settled(rgb, replace(overlay, alpha=alpha, colour=np.full(3, grey, np.float32), opacity=opacity))


def _strokes_and_edge(strokes: np.ndarray, edge: np.ndarray, opacity: float) -> np.ndarray:
    """float32 alpha: ``opacity`` in ``strokes``, ``edge`` beside them kept under half
    the opacity (settled again, the strokes stay those given: a ringing edge's alpha
    passes half and would widen them a pixel each time)."""
    return np.where(strokes, opacity, np.minimum(edge, 0.499 * opacity)).astype(np.float32)


def _without_holes(overlay: Overlay) -> Overlay:
    """``overlay`` with the holes in its strokes under a quarter of a typical stroke's
    square taken in at its opacity: a letter's counter is about a stroke wide at
    least, so such a hole is ground the mark hardly moved (dark wood under a black
    mark), where no estimate saw it, not photo seen through the mark."""
    strokes = overlay.strokes
    holes = ~_without_specks(~strokes, _stroke_width(strokes, TYPICAL_STROKE) ** 2 // 4) & ~strokes
    return replace(overlay, alpha=np.where(holes, overlay.opacity, overlay.alpha).astype(np.float32))


def _without_specks(mask: np.ndarray, least: int) -> np.ndarray:
    """``mask`` without its connected parts of fewer than ``least`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= least
    keep[0] = False
    return keep[labels]


def _explain(rgb: np.ndarray, regions: np.ndarray, text: np.ndarray, overlay: Overlay) -> Overlay:
    """``overlay`` extended to each of ``regions`` (bool H x W) whose ``text``
    strokes it undoes: at the mark's opacity and colour the mark's strokes there
    cover the text, stay in range and stop standing out. Opaque text does not: undone
    at a lower opacity it is only dimmed."""
    if not regions.any():
        return overlay
    width = _stroke_width(overlay.covers)
    alpha = overlay.alpha.copy()
    count, _, stats, _ = cv2.connectedComponentsWithStats(regions.astype(np.uint8), connectivity=8)
    rows, cols = regions.shape
    for x, y, w, h, _ in stats[1:]:
        pad = 2 * width
        window = np.s_[max(0, y - pad):min(rows, y + h + pad), max(0, x - pad):min(cols, x + w + pad)]
        part = Overlay(alpha[window], overlay.colour, overlay.opacity)
        region = regions[window]
        moved = _moved_evidence(rgb[window], overlay.colour, width)
        strokes = _thin((moved >= 0.5 * overlay.opacity) & region)
        reading = _overlay(rgb[window], region, strokes, known=part)
        if (reading.overlay is not None and reading.out_of_range <= MAX_OUT_OF_RANGE
                and reading.contrast_left <= MAX_LEFT_EXPLAINED
                and _steady(moved[strokes], overlay.opacity) >= MIN_STEADY
                and _share(reading.overlay.covers, text[window] & region) >= MIN_EXPLAINED):
            np.maximum(alpha[window], _settled(rgb[window], reading.overlay).alpha, out=alpha[window])
    return replace(overlay, alpha=alpha)


def _shows_opacity(moved: np.ndarray, opacity: float) -> np.ndarray:
    """bool: which pixels along a mark's lines moved by its opacity. More is let
    pass over it than under: the ground a pixel is judged against, opened (a
    bright mark) or closed (a dark one), lies beyond the true ground, away from the
    mark's colour, so a pixel of the mark can read as having moved further than it
    did. (Whether a set of strokes is a mark at all, ``_steady``, keeps the tight
    band both ways: opaque text passed the loose one.)"""
    return (moved >= (1 - STEADY_TOLERANCE) * opacity) & (moved <= (1 + STEADY_OVERSHOOT) * opacity)


def _steady(moved: np.ndarray, opacity: float) -> float:
    """The share of stroke pixels that moved by the mark's own opacity (within
    STEADY_TOLERANCE): a mark's letters show one opacity, texture the detector took
    for letters does not."""
    return float(np.mean(np.abs(moved - opacity) <= STEADY_TOLERANCE * opacity)) if moved.size else 0.0


def _share(covers: np.ndarray, pixels: np.ndarray) -> float:
    return float(covers[pixels].mean()) if pixels.any() else 0.0


def _estimate(rgb: np.ndarray, faint: np.ndarray, strokes: np.ndarray, confined: bool = False) -> _Reading:
    """The mark one guess at the strokes leads to: a first fit on them, then the
    strokes that fit sees across the regions (``confined``: among the guessed ones), fitted again."""
    estimate = _fit(rgb, strokes) if strokes.sum() >= 30 else None
    if estimate is None:
        return _Reading(1.0, None, strokes)
    opacity, colour, _ = estimate
    width = _stroke_width(strokes)  # the evidence's ground reaches a stroke's width
    alpha = _only_at(_grow(faint, 3), lambda box: _evidence(rgb[box], opacity, colour, width), pad=width)
    seen = _thin(alpha >= 0.5 * opacity)
    return _overlay(rgb, faint, seen & strokes if confined else seen)


def _overlay(rgb: np.ndarray, faint: np.ndarray, strokes: np.ndarray, known: Overlay | None = None,
             sharpen: bool = False) -> _Reading:
    """The mark fitted to ``strokes``; with ``known``, its opacity and colour are kept
    and only the alpha is fitted. A fresh fit whose undone strokes still stand out
    is refused: opaque text (a credit, a caption) taken for a faint mark, which
    undoing at a low opacity only dims."""
    if strokes.sum() < 30:
        return _Reading(1.0, None, strokes)
    if known is not None:
        opacity, colour, background = known.opacity, known.colour, _background(rgb, strokes)
    elif (estimate := _fit(rgb, strokes, sharpen)) is not None:
        opacity, colour, background = estimate
    else:
        return _Reading(1.0, None, strokes)
    alpha = _only_at(_grow(strokes, 2), lambda box: _alpha(rgb[box], background[box], opacity, colour))
    if known is None:  # strokes seen in this photo: their insides are the mark's own opacity
        alpha[_shrink(strokes, 1)] = opacity
    alpha[_grow(_untouched(faint, alpha >= VISIBLE_ALPHA), 3)] = 0.0
    overlay = Overlay(alpha.astype(np.float32), colour.astype(np.float32), opacity)
    recovered, unreliable = overlay.undo(rgb)
    left = _contrast_left(rgb, recovered, background, alpha >= 0.5 * opacity)
    if known is None and left > MAX_LEFT_VISIBLE:
        return _Reading(1.0, None, strokes)
    return _Reading(float(unreliable[strokes].mean()), overlay if overlay.covers.any() else None, strokes, left)


def _contrast_left(rgb: np.ndarray, recovered: np.ndarray, background: np.ndarray, marked: np.ndarray) -> float:
    """The share of the marked pixels' contrast with the photo around them that is
    left once they are undone (0: gone, 1: unchanged)."""
    if marked.sum() < 20:
        return 1.0
    before = np.median(np.abs(rgb[marked] - background[marked]).max(axis=1))
    after = np.median(np.abs(recovered[marked] - background[marked]).max(axis=1))
    return float(after / max(before, 1e-6))


def _stroke_width(strokes: np.ndarray, percentile: float = 100.0) -> int:
    """An odd width a little over the widest stroke (with ``percentile`` under 100:
    over nearly all strokes, a blob of photo detail taken for the mark left out)."""
    depth = cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 3)
    return 2 * int(np.percentile(depth[strokes], percentile) if strokes.any() else 0) + 3


def _evidence(rgb: np.ndarray, opacity: float, colour: np.ndarray, width: int) -> np.ndarray:
    """Per pixel, how far the mark would have moved it (``_moved_evidence``), within ``[0, opacity]``."""
    return np.clip(_moved_evidence(rgb, colour, width), 0.0, opacity)


def _moved_evidence(rgb: np.ndarray, colour: np.ndarray, width: int) -> np.ndarray:
    """Per pixel, how far it moved towards ``colour``, judged against a background
    that needs no strokes yet: the photo with anything thinner than ``width``
    towards the mark's colour taken away (opening for bright marks, closing for dark)."""
    return _moved(rgb, _underneath(rgb, colour, width), colour)


def _underneath(rgb: np.ndarray, colour: np.ndarray, width: int) -> np.ndarray:
    """The photo with anything thinner than ``width`` towards ``colour`` taken away."""
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    bright = float(colour.mean()) >= 0.5
    return cv2.morphologyEx(rgb, cv2.MORPH_OPEN if bright else cv2.MORPH_CLOSE, element)


def _towards(rgb: np.ndarray, underneath: np.ndarray, colour: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """bool H x W: the pixels whose change from the ground ``underneath`` them, ``moved``
    of the way to ``colour`` (``_moved``), strays aside of that way by under MAX_ASIDE
    times as far. A mark moves each pixel straight towards its colour; the photo's own
    highlights on coloured ground (sunlit yellow planks under a white mark) move along
    the ground's colour."""
    reach = np.maximum(np.sum((colour[None, None] - underneath) ** 2, axis=2), 1e-3)
    aside = np.sqrt(np.maximum(np.sum((rgb - underneath) ** 2, axis=2) / reach - moved ** 2, 0.0))
    return aside <= MAX_ASIDE * np.maximum(moved, 0.0)


def _repeats(rgb: np.ndarray, overlay: Overlay) -> tuple[list[tuple[float, float]], np.ndarray | None,
                                                         np.ndarray] | None:
    """(top-left corners of every copy of the mark, the 2 x 2 basis of the lattice
    they lie on or None, bool h x w strokes of one), or None when the mark has no
    copy to learn from. Its most complete copy is matched against the evidence
    map of the whole photo (copies cut by the border included); the copies found
    are then averaged into a cleaner template (the photo under each differs, the
    mark does not) and matched once more, kept when it finds as many copies. On a
    lattice, the copies' median then shows what the template left out (``_whole_copy``)."""
    covers = overlay.covers
    widest, typical = _stroke_width(covers), _stroke_width(covers, TYPICAL_STROKE)
    underneath = _underneath(rgb, overlay.colour, widest)
    moved = _moved(rgb, underneath, overlay.colour)
    evidence = np.clip(moved, 0.0, overlay.opacity)
    # where the ground is nearly the mark's colour the mark changed nothing: no copy shows there
    hidden = overlay.opacity * np.abs(overlay.colour - underneath).max(axis=2) < HIDDEN_CHANGE
    # pieces joined by the widest stroke first; when none of those is found on a lattice (a blob of
    # photo detail taken for the mark widened it, joining copies that lie close), by the typical stroke
    for stroke in (widest, typical):
        (on_lattice, found), corners, shape = _best_piece(evidence, covers, overlay.opacity, stroke)
        if on_lattice:
            break
    if found < MIN_COPIES:  # a single mark (its own match and a chance one or two)
        return None
    h, w = shape.shape
    inside = [(cx, cy) for cx, cy in corners if 0 <= cx and 0 <= cy and cx + w <= rgb.shape[1]
              and cy + h <= rgb.shape[0]]
    if len(inside) >= 3:
        mean = np.mean([evidence[cy:cy + h, cx:cx + w] for cx, cy in inside], axis=0)
        averaged = shape | (mean >= COPY_EVIDENCE * overlay.opacity)
        again = _copies(evidence, averaged, mean * averaged, overlay.opacity)
        if len(again) >= len(corners):  # not always cleaner: on a mountain photo it matched 5 copies of 9
            corners, shape = again, averaged
    # specks in the template (photo noise read as the mark) would be undone at every copy
    shape = _without_specks(shape, typical ** 2 // 4)
    corners, basis = _on_lattice(corners, shape, evidence, hidden, overlay.opacity)
    if basis is not None:  # the lattice's points again, for the whole copy: more of them reach into the photo
        corners, shape = _whole_copy(evidence, corners, basis, shape, overlay.opacity)
        shape = _without_specks(shape, typical ** 2 // 8)  # the copies' median is cleaner: keep full stops
        corners, basis = _on_lattice(corners, shape, evidence, hidden, overlay.opacity)
    if basis is None:
        # off a lattice, chance matches are likelier (dark hair for a black mark): each copy
        # must show the mark's one opacity, which such a match reaches in places only
        corners = [(x, y) for x, y in corners
                   if _steady(moved[_placed(shape, x, y, moved.shape)], overlay.opacity) >= MIN_STEADY_COPY]
        if len(corners) < MIN_COPIES:
            return None
    return corners, basis, shape


def _whole_copy(evidence: np.ndarray, corners: list[tuple[float, float]], basis: np.ndarray, shape: np.ndarray,
                opacity: float) -> tuple[list[tuple[float, float]], np.ndarray]:
    """(corners, shape) of a tiled mark as one lattice cell of it, when its best
    piece left some of it out (words over ground where the mark hardly showed in the
    copy the piece was cut from). Those show in the median evidence across all
    copies, the photo under each being different; the cell (the points within half
    a step of the piece's centre along both lattice steps, a pixel more for rounding)
    placed at every lattice point tiles the photo, so whatever it cuts of one copy
    another's cell holds. Where the photo's texture alone passes for the mark as
    often at single pixels (the same median over boxes jittered off the copies), the
    cell takes only whole letters, and is left as it is when those boxes show letters too."""
    h, w = shape.shape
    basis = _reduced(basis)
    span = np.abs(basis).sum(axis=0)  # the cell's width and height
    box = (int(np.ceil(span[1])) + 3, int(np.ceil(span[0])) + 3)
    corner = np.round(np.array([w, h]) / 2 - np.array(box[::-1]) / 2)  # in the piece's frame
    evidence = evidence.astype(np.float32)
    median = _median_of_copies(evidence, corners, corner, box)
    jitter = np.random.default_rng(0).uniform(-span / 2, span / 2, (len(corners), 2))
    chance = _median_of_copies(evidence, list(np.asarray(corners) + jitter), corner, box)
    if not np.isfinite(chance).any():
        return corners, shape
    level = float(np.nanquantile(chance, 1.0 - MAX_CHANCE_EVIDENCE))
    if level <= MAX_CHANCE_LEVEL * opacity:
        seen = median >= max(COPY_EVIDENCE * opacity, level)
    else:
        # texture passes for the mark at single pixels as often, but not as whole letters
        letter = _stroke_width(shape, TYPICAL_STROKE) ** 2
        seen, by_chance = (_without_specks(_thin(np.nan_to_num(picture) >= MAX_CHANCE_LEVEL * opacity), letter)
                           for picture in (median, chance))
        if by_chance.sum() > MAX_CHANCE_LETTERS * seen.sum():
            return corners, shape
    rows, cols = np.mgrid[:box[0], :box[1]]
    steps = (np.stack([cols, rows], axis=-1) + corner - np.array([w, h]) / 2) @ np.linalg.inv(basis)
    margin = 1.5 / np.linalg.norm(basis, axis=1)  # a pixel and a half of each step
    cell = np.all(np.abs(steps) <= 0.5 + margin, axis=-1)
    stamp = cell & seen
    if not stamp.any():
        return corners, shape
    ys, xs = np.nonzero(stamp)
    x0, y0 = corner + np.array([xs.min(), ys.min()])
    return [(x + x0, y + y0) for x, y in corners], stamp[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _reduced(basis: np.ndarray) -> np.ndarray:
    """The 2 x 2 basis of the same lattice with the shortest, most nearly orthogonal
    steps (Lagrange-Gauss reduction): its cell is the most compact."""
    first, second = basis.astype(np.float64)
    while True:
        if np.dot(second, second) < np.dot(first, first):
            first, second = second, first
        multiple = round(float(np.dot(first, second) / np.dot(first, first)))
        if multiple == 0:
            return np.array([first, second])
        second = second - multiple * first


def _best_piece(evidence: np.ndarray, covers: np.ndarray, opacity: float,
                stroke: int) -> tuple[tuple[bool, int], list[tuple[int, int]], np.ndarray | None]:
    """((whether its copies lie on a lattice, how many), corners of its copies, bool
    h x w strokes) of the piece of the mark (letters joined across ``stroke`` pixels)
    that makes the best template. The piece that finds the most copies is the
    cleanest, unless its copies overlap (it holds several copies joined by photo
    detail taken for the mark) or lie on no lattice while another's do (a part of a
    copy matches more places). Whole copies only: once a piece's copies are found on
    a lattice, pieces under half its size are letters (which would match letters of
    the mark itself); until then, pieces down to a share of the largest are tried
    (the largest may be copies lying close enough to join)."""
    candidates = _copy_candidates(covers, stroke)
    smallest = MIN_PIECE_SHARE * candidates[0][0] if candidates else 0.0
    best, whole = ((False, False, 0), [], None), 0
    for size, (x, y, w, h) in candidates:
        if size < max(smallest, 0.5 * whole):
            break
        shape = covers[y:y + h, x:x + w]
        corners = _copies(evidence, shape, evidence[y:y + h, x:x + w] * shape, opacity)
        single = len(corners) < MIN_COPIES or not _overlapping(shape, corners, covers.shape)
        on_lattice = _lie_on_lattice(corners, shape)
        if single and on_lattice:
            whole = max(whole, size)
        if (single, on_lattice, len(corners)) > best[0]:
            best = ((single, on_lattice, len(corners)), corners, shape)
    (single, on_lattice, found), corners, shape = best
    return (single and on_lattice, found), corners, shape


def _lie_on_lattice(corners: list[tuple[int, int]], shape: np.ndarray) -> bool:
    """Whether copies of ``shape`` found at ``corners`` lie on one lattice (``_fit_lattice``)."""
    return len(corners) >= MIN_LATTICE_COPIES and _fit_lattice(np.asarray(corners, np.float64),
                                                               min(shape.shape) / 2) is not None


def _on_lattice(corners: list[tuple[int, int]], shape: np.ndarray, evidence: np.ndarray, hidden: np.ndarray,
                opacity: float) -> tuple[list[tuple[float, float]], np.ndarray | None]:
    """The copies of a tiled mark (one stamp repeated at fixed steps): when most
    copies found lie on one lattice, its points instead, each whose copy touches the
    image and shows at least a trace of the mark, is mostly cut off by the border or
    mostly ``hidden`` (over ground of the mark's own colour, which it could not change)
    (chance matches off the lattice are dropped, copies the matching missed added);
    otherwise the copies found, as they are. The lattice's 2 x 2 basis comes with
    them (None without one)."""
    if len(corners) < MIN_LATTICE_COPIES:
        return corners, None
    points = np.asarray(corners, np.float64)
    lattice = _fit_lattice(points, min(shape.shape) / 2)
    if lattice is None:
        return corners, None
    origin, basis = lattice
    h, w = shape.shape
    height, width = evidence.shape
    span = int(np.ceil(2 * (height + width) / max(1.0, float(min(np.linalg.norm(basis, axis=1))))))
    kept = []
    for i in range(-span, span + 1):
        for j in range(-span, span + 1):
            point = origin + i * basis[0] + j * basis[1]
            placed = _placed(shape, *point, evidence.shape)
            if not placed.any():
                continue
            cut_off = placed.sum() < 0.3 * shape.sum()
            if cut_off or hidden[placed].mean() > 0.5 or np.median(evidence[placed]) >= GAP_EVIDENCE * opacity:
                kept.append((float(point[0]), float(point[1])))
    return kept, basis


def _fit_lattice(points: np.ndarray, shortest: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(origin, 2 x 2 basis) of the lattice most ``points`` lie on (within
    LATTICE_TOLERANCE), refitted on them by least squares; None when no lattice holds
    MIN_LATTICE_COPIES of them and 60% of all. Tries pairs of the shortest differences
    between points as steps and each point as the origin."""
    differences = (points[None] - points[:, None]).reshape(-1, 2)
    differences = differences[np.linalg.norm(differences, axis=1) >= shortest]
    steps: list[np.ndarray] = []
    for step in sorted(differences, key=lambda d: float(np.linalg.norm(d))):
        if all(np.linalg.norm(step - other) > LATTICE_TOLERANCE and np.linalg.norm(step + other) > LATTICE_TOLERANCE
               for other in steps):
            steps.append(step)
        if len(steps) == 12:
            break
    best, best_count = None, 0
    for first, second in itertools.combinations(steps, 2):
        basis = np.array([first, second])
        if abs(np.linalg.det(basis)) < 0.3 * np.linalg.norm(first) * np.linalg.norm(second):
            continue
        inverse = np.linalg.inv(basis)
        for origin in points:
            coordinates = (points - origin) @ inverse
            offsets = np.linalg.norm((coordinates - np.round(coordinates)) @ basis, axis=1)
            count = int(np.sum(offsets <= LATTICE_TOLERANCE))
            if count > best_count:
                best, best_count = (origin, basis, offsets <= LATTICE_TOLERANCE, np.round(coordinates)), count
    if best is None or best_count < max(MIN_LATTICE_COPIES, 0.6 * len(points)):
        return None
    origin, basis, inliers, rounded = best
    design = np.column_stack([np.ones(int(inliers.sum())), rounded[inliers]])
    solution, *_ = np.linalg.lstsq(design, points[inliers] - origin, rcond=None)
    return origin + solution[0], solution[1:]


def _copies(evidence: np.ndarray, shape: np.ndarray, template: np.ndarray, opacity: float) -> list[tuple[int, int]]:
    """Top-left corners (may lie outside the image) where ``template`` matches the
    evidence map and the copy's strokes show the mark's opacity."""
    if template.std() == 0:
        return []
    h, w = shape.shape
    padded = np.pad(evidence, ((h, h), (w, w))).astype(np.float32)
    score = cv2.matchTemplate(padded, template.astype(np.float32), cv2.TM_CCOEFF_NORMED)
    corners = []
    for left, top in _peaks(score, (w, h), REPEAT_SCORE):
        placed = _placed(shape, left - w, top - h, evidence.shape)
        # a copy shows the mark's own opacity along its strokes; a chance match does not
        if placed.any() and np.median(evidence[placed]) >= COPY_EVIDENCE * opacity:
            corners.append((left - w, top - h))
    return corners


def _placed(shape: np.ndarray, x0: float, y0: float, size: tuple[int, ...]) -> np.ndarray:
    """bool ``size``: ``shape`` with its corner at (x0, y0) (rounded), clipped."""
    placed = np.zeros(size, bool)
    _paste(placed, shape, int(round(x0)), int(round(y0)))
    return placed


def _paste(canvas: np.ndarray, shape: np.ndarray, x0: int, y0: int) -> None:
    """``canvas |= shape`` placed with its corner at (x0, y0), clipped to the canvas."""
    h, w = shape.shape
    height, width = canvas.shape
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(width, x0 + w), min(height, y0 + h)
    if ix1 > ix0 and iy1 > iy0:
        canvas[iy0:iy1, ix0:ix1] |= shape[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]


def _overlapping(shape: np.ndarray, corners: list[tuple[int, int]], size: tuple[int, int]) -> bool:
    """Whether copies of ``shape`` placed at ``corners`` overlap: the piece holds more
    than one copy of the mark, so each of its matches lands on copies another took."""
    placed = np.zeros(size, np.int32)
    for x, y in corners:
        placed += _placed(shape, x, y, size)
    return bool(np.sum(placed > 1) > MAX_COPY_OVERLAP * max(1, np.sum(placed > 0)))


def _copy_candidates(covers: np.ndarray, stroke: int,
                     count: int = TEMPLATE_CANDIDATES) -> list[tuple[int, tuple[int, int, int, int]]]:
    """(pixels of the mark, (x, y, w, h)) of the mark's largest pieces away from the
    border (letters joined across twice ``stroke``, a few pixels of margin included),
    largest first."""
    reach = max(9, 2 * stroke)  # letters of one copy join, copies (a word apart) do not
    joined = cv2.dilate(covers.astype(np.uint8), np.ones((reach, reach), np.uint8))
    labels_count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    height, width = covers.shape
    area = np.bincount(labels[covers], minlength=labels_count)
    pieces = [(int(area[label]), tuple(int(v) for v in stats[label, :4])) for label in range(1, labels_count)]
    inside = [(size, box) for size, box in pieces
              if box[0] > 2 and box[1] > 2 and box[0] + box[2] < width - 2 and box[1] + box[3] < height - 2]
    return sorted(inside, reverse=True)[:count]


def _peaks(score: np.ndarray, size: tuple[int, int], threshold: float) -> list[tuple[int, int]]:
    """(x, y) of the local maxima of ``score`` above ``threshold``, at least half a
    template apart."""
    w, h = size
    score = score.copy()
    found = []
    while True:
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[y, x] < threshold:
            return found
        found.append((int(x), int(y)))
        score[max(0, y - h // 2):y + h // 2 + 1, max(0, x - w // 2):x + w // 2 + 1] = -1.0


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


def _background(rgb: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The photo under the strokes, carried in from around them (Telea)."""
    return _carried_in(rgb, _grow(strokes, 2), radius=5)


def _fit(rgb: np.ndarray, strokes: np.ndarray, sharpen: bool = False) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(opacity, colour, background estimate) from the stroke interiors, or None
    when the opacity is implausible; ``sharpen``: made precise (``_sharpen``)."""
    background = _background(rgb, strokes)
    interior = _shrink(strokes, 1)
    if interior.sum() < 0.3 * strokes.sum():  # thin strokes vanish when shrunk: vote with all of them
        interior = strokes
    opacity, grey = _vote((rgb - background)[interior], background[interior])
    if not OPACITY_RANGE[0] <= opacity <= OPACITY_RANGE[1]:
        return None
    if sharpen:
        opacity, grey = _sharpen(rgb, background, strokes, opacity, grey)
    return opacity, np.full(3, grey, np.float32), background


def _sharpen(rgb: np.ndarray, background: np.ndarray, strokes: np.ndarray,
             opacity: float, grey: float) -> tuple[float, float]:
    """The vote's opacity and grey made precise (undoing amplifies their errors by
    ``1 / (1 - a)``): the pair whose undoing makes the strokes' rim, just inside
    their edge, continue the photo carried in from just outside (the median
    difference, so photo detail under a few strokes cannot pull it)."""
    depth = cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 3)
    rim = (depth > 1.5) & (depth <= 3.5)
    if rim.sum() < max(50.0, MIN_RIM * strokes.sum()):  # thin strokes: no pixel wholly inside to judge by
        return opacity, grey
    marked, under = rgb[rim], background[rim]

    def mismatch(a: float, g: float) -> float:
        return float(np.median(np.abs((marked - a * g) / (1.0 - a) - under).mean(axis=1)))

    def best(opacities: np.ndarray, greys: np.ndarray) -> tuple[float, float]:
        opacities = opacities[(opacities >= OPACITY_RANGE[0]) & (opacities <= OPACITY_RANGE[1])]
        _, a, g = min((mismatch(a, g), float(a), float(g)) for a in opacities for g in greys)
        return a, g

    steps = np.arange(-5, 6)
    opacity, grey = best(opacity + 0.02 * steps, np.linspace(0.0, 1.0, 26))  # any grey: the vote's may be off
    return best(opacity + 0.004 * steps, np.clip(grey + 0.01 * np.arange(-6, 7), 0.0, 1.0))


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


def _alpha(rgb: np.ndarray, background: np.ndarray, most: float, colour: np.ndarray) -> np.ndarray:
    """Per pixel: how far ``rgb`` moved from the background towards the colour, within
    ``[0, most]`` (the mark's opacity, or a little over it along a ringing edge)."""
    return np.clip(_moved(rgb, background, colour), 0.0, most)


def _moved(rgb: np.ndarray, background: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel: the projection of ``rgb - background`` onto ``colour - background``
    (1: all the way to the colour; beyond 0..1 where the photo differs for its own reasons)."""
    towards = colour[None, None] - background
    return np.sum((rgb - background) * towards, axis=2) / np.maximum(np.sum(towards ** 2, axis=2), 1e-3)


def _window(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice]:
    """The box around ``mask`` (bool H x W) grown by ``pad`` pixels, within the picture
    (empty when nothing is set): per-pixel work confined to where it is used."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.s_[0:0, 0:0]
    return np.s_[max(0, rows[0] - pad):rows[-1] + pad + 1, max(0, cols[0] - pad):cols[-1] + pad + 1]


def _only_at(mask: np.ndarray, per_pixel: Callable[[tuple[slice, slice]], np.ndarray], pad: int = 0) -> np.ndarray:
    """float32 H x W: ``per_pixel`` (a map of the pixels in a box, given the box) at
    ``mask``'s pixels, 0 elsewhere; worked out only in the box around them, grown by
    ``pad`` (how far each pixel's value reaches, a morphology's element)."""
    box = _window(mask, pad)
    values = np.zeros(mask.shape, np.float32)
    values[box] = np.where(mask[box], per_pixel(box), 0.0)
    return values


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0


def _shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0
