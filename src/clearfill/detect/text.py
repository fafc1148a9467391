"""Finding text on a photo (captions, credits, date stamps, watermarks) as a
stroke-accurate mask.

The detector is PP-OCRv4's (``ch_PP-OCRv4_det_infer.onnx``, Apache-2.0), which the
``rapidocr-onnxruntime`` wheel ships; it is run here through onnxruntime alone (no
recognition, no boxes). Its output is a map of shrunk text kernels. clearfill
runs it at several sizes and on a contrast-enhanced copy (faint marks), takes the
strongest answer per pixel, grows each kernel back to its text (as the detector's
own post-processing does), and then keeps, inside each region, only the pixels
whose colour stands apart from the region's surroundings: the strokes, not the
whole box of sky around them. What the detector alone vouches for weakly (a faint
region kept whole, a semi-transparent mark) must also be read as characters by
PP-OCRv4's recognizer (``ch_PP-OCRv4_rec_infer.onnx``, from the same wheel).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import ChecksumError, ModelNotAvailableError
from ..imaging import quantize, seeded_opencv, share_covered
from .marks import MIN_EXPLAINED, Overlay, find_overlay, follow

DETECTOR_FILE = "ch_PP-OCRv4_det_infer.onnx"
DETECTOR_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"  # rapidocr-onnxruntime 1.4.4
RECOGNIZER_FILE = "ch_PP-OCRv4_rec_infer.onnx"
RECOGNIZER_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"  # the same wheel
MIN_SIGHTING = 0.05  # share of a text line a view's kernel must cover for that view to have seen it
APART = 3.0  # Lab units beyond the ground's own spread (90th percentile) before a colour stands apart from it
MIN_OUTLINED_RIM = 0.5  # share of a line's mask's rim that stands apart when the mask ends inside an outline
READ_CONFIDENCE = 0.75  # mean confidence of the characters the recognizer reads on a line before it counts as read
MARK_CHARACTERS = 2  # characters read on one of a mark's lines before it is believed (a dot of photo reads as one)
MARK_LINES_READ = 5  # a mark's largest lines asked (a tiled mark has dozens; any copy reads as well as another)
MISSING = ("text detection needs PP-OCRv4's detector and recognizer: pip install 'clearfill[detect]' and "
           "pip install --no-deps rapidocr-onnxruntime==1.4.4")


@dataclass(frozen=True)
class TextConfig:
    sizes: tuple[int, ...] = (736, 1280)  # long sides the detector sees (small text needs the larger)
    max_upscale: float = 3.0  # ...but never more than this many times the image's own: enlarged 4-8x, a
    # thumbnail's smooth curves (a cup's handle) read as letters, while its small text shows at 3x already
    enhance: bool = True  # also look at a contrast-enhanced copy (faint, semi-transparent marks)
    threshold: float = 0.3  # kernel probability that counts as text (the detector's own default)
    unclip: float = 1.6  # grow kernels back by unclip x area / perimeter (the detector's post-processing)
    max_kernel_thickness: float = 0.03  # half-thickness, share of the long side: thicker kernels are not text lines
    strokes: bool = True  # keep only the strokes inside each region, not the whole region
    faint_contrast: float = 25.0  # below this the strokes are faint (semi-transparent): the whole region is kept
    grow_pixels: int = 4  # the antialiased edge and outline around strokes
    fringe_pixels: int = 3  # then on while pixels still stand apart from the ground (an outline's or shadow's edge)
    unblend: bool = True  # estimate semi-transparent marks' colour and opacity so they can be undone
    follow_mark: bool = True  # look for the rest of such a mark on a picture of it alone (its evidence)
    colourless: bool = True  # where nothing is seen, look for a white or grey mark on a picture of lost colour
    min_line_aspect: float = 1.3  # a faint region kept whole must be this many times longer than thick
    min_views: int = 2  # ...and seen on this many of the detector's views (picture x size), or continue a line that is
    read: bool = True  # a faint region kept whole, or a mark, must also be read as characters by PP-OCRv4's recognizer


def model_path(file: str) -> Path:
    """Where the installed rapidocr-onnxruntime keeps one of PP-OCRv4's models (found
    without importing that package, whose own dependencies are not needed)."""
    from importlib.util import find_spec

    spec = find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(MISSING)
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / file
    if not path.is_file():
        raise ModelNotAvailableError(f"{MISSING} ({file} is missing from the installed package)")
    return path


def detector_path() -> Path:
    return model_path(DETECTOR_FILE)


class _PublishedModel:
    """One of PP-OCRv4's ONNX models as the wheel ships it: verified against its
    published sha256 once, then shared by every caller."""

    _shared: _PublishedModel | None = None
    _lock = threading.Lock()
    role = "model"

    def __init__(self, path: Path | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise ModelNotAvailableError(MISSING) from None
        file, expected = self.published()
        path = path or model_path(file)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ChecksumError(f"{path} does not match PP-OCRv4's published {self.role} (sha256 {digest[:12]}...)")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    @staticmethod
    def published() -> tuple[str, str]:
        """(file name, sha256), read when loading (so a test can change the expected digest)."""
        raise NotImplementedError

    @classmethod
    def shared(cls):
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _run(self, bgr8: np.ndarray) -> np.ndarray:
        """The model's output for a BGR picture, normalised as PP-OCR was trained."""
        tensor = ((bgr8.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        return self.session.run(None, {self.input: tensor})[0][0]


class TextDetector(_PublishedModel):
    """The detector's probability map for an image, at any size."""

    _shared = None
    role = "detector"

    @staticmethod
    def published() -> tuple[str, str]:
        return DETECTOR_FILE, DETECTOR_SHA256

    def probability(self, rgb8: np.ndarray, long_side: int) -> np.ndarray:
        """float32 H x W: how likely each pixel is inside a text kernel."""
        height, width = rgb8.shape[:2]
        scale = long_side / max(height, width)
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        pixels = cv2.resize(rgb8[..., ::-1], size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        kernels = self._run(pixels)[0]
        return cv2.resize(kernels, (width, height), interpolation=cv2.INTER_LINEAR)


class TextReader(_PublishedModel):
    """The recognizer, asked only whether a line holds characters (not which): the
    detector also fires on stamens, bark and misty blobs, which nothing reads."""

    _shared = None
    role = "recognizer"
    height = 48  # the line height it was trained on

    @staticmethod
    def published() -> tuple[str, str]:
        return RECOGNIZER_FILE, RECOGNIZER_SHA256

    def reads(self, rgb8: np.ndarray, region: np.ndarray, least: int = 1) -> bool:
        """Whether ``least`` characters or more are read along the line ``region`` (bool
        H x W) covers, with a mean confidence of at least READ_CONFIDENCE."""
        return self.characters(rgb8, region) >= least

    def characters(self, rgb8: np.ndarray, region: np.ndarray, confidence: float = READ_CONFIDENCE) -> int:
        """How many characters are read along the line ``region`` (bool H x W) covers, at
        a mean ``confidence`` or more (0 when less); the line is turned level along its
        longer side, and read upside down too when that fails."""
        line = _level_line(rgb8, region)
        return next((count for count, mean in map(self._characters, (line, line[::-1, ::-1])) if mean >= confidence),
                    0)

    def _characters(self, rgb8: np.ndarray) -> tuple[int, float]:
        """(how many characters the line ``rgb8`` holds, their mean confidence)."""
        height, width = rgb8.shape[:2]
        size = (int(np.clip(round(self.height * width / max(1, height)), 16, 2048)), self.height)
        scores = self._run(cv2.resize(rgb8[..., ::-1], size, interpolation=cv2.INTER_AREA))  # steps x classes
        best = scores.argmax(axis=1)
        # CTC: class 0 is "no character"; a character held over several steps is read once
        starts = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
        return int(starts.sum()), float(scores.max(axis=1)[starts].mean()) if starts.any() else 0.0


def _level_line(rgb8: np.ndarray, region: np.ndarray, margin: float = 0.15) -> np.ndarray:
    """The pixels of the line ``region`` covers, turned level along its longer side,
    with a margin of ``margin`` x its height all round."""
    points = np.column_stack(np.nonzero(region)[::-1]).astype(np.float32)
    (cx, cy), (w, h), angle = cv2.minAreaRect(points)
    if w < h:
        w, h, angle = h, w, angle + 90
    width, height = w + 2 * margin * h, h * (1 + 2 * margin)
    turn = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    turn[:, 2] += (width / 2 - cx, height / 2 - cy)
    return cv2.warpAffine(rgb8, turn, (max(4, round(width)), max(4, round(height))), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _enhanced(rgb8: np.ndarray) -> np.ndarray:
    """Local contrast raised on lightness (CLAHE): a faint mark becomes a visible one."""
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _regions(kernels: np.ndarray, unclip: float, max_thickness: float = 1.0) -> np.ndarray:
    """Each kernel grown back to its text by unclip x area / perimeter; kernels whose
    half-thickness exceeds ``max_thickness`` x the long side are not lines of text
    (grass, petals, boats the detector fires on) and are dropped."""
    regions = np.zeros(kernels.shape, np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(kernels.astype(np.uint8), connectivity=8)
    height, width = kernels.shape
    thickest = max_thickness * max(height, width)
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        if area < 3:
            continue
        component = (labels[y:y + h, x:x + w] == label).astype(np.uint8)
        if cv2.distanceTransform(np.pad(component, 1), cv2.DIST_L2, 3).max() > thickest:
            continue
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        perimeter = max(1.0, sum(cv2.arcLength(c, True) for c in contours))
        reach = int(np.ceil(unclip * area / perimeter)) + 1
        x0, y0, x1, y1 = max(0, x - reach), max(0, y - reach), min(width, x + w + reach), min(height, y + h + reach)
        local = np.zeros((y1 - y0, x1 - x0), np.uint8)
        local[y - y0:y - y0 + h, x - x0:x - x0 + w] = component
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        regions[y0:y1, x0:x1] |= cv2.dilate(local, kernel)
    return regions.astype(bool)


def _strokes(rgb8: np.ndarray, regions: np.ndarray, faint_contrast: float) -> tuple[np.ndarray, np.ndarray]:
    """(strokes, faint regions). Inside each region, the pixels whose colour stands
    apart from the ring around it (Otsu on the distance to the ring's colours); a
    region where that split is not clear, or whose strokes stand out by less than
    ``faint_contrast`` (Lab units beyond the ring's own spread), is kept whole and
    counted as faint (perhaps a semi-transparent mark)."""
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2LAB).astype(np.float32)
    out = np.zeros(regions.shape, bool)
    faint = np.zeros(regions.shape, bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(regions.astype(np.uint8), connectivity=8)
    height, width = regions.shape
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        pad = 4
        x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad)
        region = labels[y0:y1, x0:x1] == label
        ring = cv2.dilate(region.astype(np.uint8), np.ones((2 * pad + 1,) * 2, np.uint8)).astype(bool) & ~region
        colours = lab[y0:y1, x0:x1]
        if ring.sum() < 8:
            out[y0:y1, x0:x1] |= region
            faint[y0:y1, x0:x1] |= region
            continue
        distance, ring_spread = _apart_from_ground(colours, colours[ring])
        inside = distance[region]
        split, _ = cv2.threshold(np.clip(inside, 0, 255).astype(np.uint8)[:, None], 0, 255,
                                 cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        cut = max(float(split), ring_spread + APART)
        strokes = region & (distance > cut)
        contrast = float(np.median(distance[strokes])) - ring_spread if strokes.any() else 0.0
        share = strokes.sum() / max(1, region.sum())
        # faint strokes (a semi-transparent mark) do not split cleanly from what shows through: keep the region
        clear = 0.02 <= share <= 0.9 and contrast >= faint_contrast
        out[y0:y1, x0:x1] |= strokes if clear else region
        if not clear:
            faint[y0:y1, x0:x1] |= region
    return out, faint


def _apart_from_ground(colours: np.ndarray, ground: np.ndarray) -> tuple[np.ndarray, float]:
    """(each of ``colours``' Lab distance to the nearest of a few colours describing
    the ``ground`` samples, the distance that 90% of the ground itself stays within)."""
    centres = _centres(ground)
    distance = np.min(np.linalg.norm(colours[..., None, :] - centres, axis=-1), axis=-1)
    spread = float(np.percentile(np.min(np.linalg.norm(ground[:, None] - centres[None], axis=-1), axis=-1), 90))
    return distance, spread


def _with_fringe(rgb8: np.ndarray, text: np.ndarray, pixels: int) -> np.ndarray:
    """``text`` grown by up to ``pixels`` more through the pixels that still stand
    apart from the ground beyond them: the soft outer edge of a caption's outline or
    a credit's shadow, which a fixed growth cuts (and a fill then smears inward).
    The edge fades out over one more pixel: where the fringe grew, and all around a
    line whose mask ends inside an outline (its rim mostly stands apart), since the
    outline's soft edge is there too where the ground is as dark as the outline."""
    if not pixels or not text.any():
        return text
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2LAB).astype(np.float32)
    reach, ground_width = pixels + 1, 3
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    near = cv2.dilate(text.astype(np.uint8), disk) > 0
    beyond = cv2.dilate(near.astype(np.uint8), np.ones((2 * ground_width + 1,) * 2, np.uint8)) > 0
    out = text.copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(beyond.astype(np.uint8), connectivity=8)
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        box = np.s_[y:y + h, x:x + w]
        line = labels[box] == label
        ground = line & ~near[box]
        if ground.sum() < 8:
            continue
        distance, spread = _apart_from_ground(lab[box], lab[box][ground])
        edge = line & near[box] & ~text[box] & (distance > spread + APART)
        grown = text[box].copy()
        for _ in range(pixels):  # only what touches the text, one pixel at a time
            grown |= _dilated(grown) & edge
        rim = line & text[box] & ~_shrunk(text[box])
        outlined = rim.any() and float(np.mean(distance[rim] > spread + APART)) >= MIN_OUTLINED_RIM
        out[box] |= grown | (_dilated(grown if outlined else grown & ~text[box]) & line)
    return out


def _dilated(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel, diagonals included."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _shrunk(mask: np.ndarray) -> np.ndarray:
    """``mask`` shrunk by one pixel, diagonals included."""
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _centres(samples: np.ndarray, k: int = 3) -> np.ndarray:
    """A few colours that describe a region's surroundings (k-means on Lab)."""
    k = min(k, len(samples))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, _, centres = seeded_opencv(cv2.kmeans, np.ascontiguousarray(samples, np.float32), k, None, criteria, 2,
                                  cv2.KMEANS_PP_CENTERS)
    return centres


@dataclass
class TextFinding:
    """What ``detect_text`` found: the mask to remove, and the semi-transparent
    mark inside it that can be undone rather than inpainted (None when there is
    none, or ``TextConfig.unblend`` is off)."""

    mask: np.ndarray  # bool H x W
    overlay: Overlay | None = None


def detect_text(rgb: np.ndarray, config: TextConfig = TextConfig(),
                detector: TextDetector | None = None) -> TextFinding:
    """The text on ``rgb`` (float32 RGB in [0, 1]) as a stroke-accurate mask, and
    the semi-transparent mark among it (``marks.Overlay``)."""
    look = _Look(config, detector or TextDetector.shared(), TextReader.shared() if config.read else None)
    rgb8 = quantize(rgb)
    finding = look.finding(rgb, rgb8, [rgb8, _enhanced(rgb8)] if config.enhance else [rgb8])
    if finding.mask.any() or not (config.colourless and config.strokes and config.unblend):
        return finding
    # nothing seen: a white or grey mark over colourful ground may show only as the colour it took away;
    # what that picture alone shows is believed only as a mark that can be undone (foliage fires on it too)
    lost = _colourless(rgb8)
    mark = look.sightings(rgb, rgb8, [lost], shown=lost[..., 0]).overlay
    return TextFinding(mark.reach, mark) if mark is not None else finding


class _Sightings(NamedTuple):
    """What one look at a few pictures found, before it is judged."""

    regions: np.ndarray  # bool H x W: the text lines the detector sees
    views: np.ndarray  # int H x W: on how many of its views each line shows
    strokes: np.ndarray  # bool H x W: the strokes inside the regions
    faint: np.ndarray  # bool H x W: the regions whose strokes are faint (kept whole)
    overlay: Overlay | None  # the semi-transparent mark among them


@dataclass(frozen=True)
class _Look:
    """One way of looking for text: the settings and the models."""

    config: TextConfig
    detector: TextDetector
    reader: TextReader | None  # None: nothing needs reading to be believed

    def finding(self, rgb: np.ndarray, rgb8: np.ndarray, pictures: list[np.ndarray]) -> TextFinding:
        """The text the detector sees on ``pictures`` (views of ``rgb``), made stroke-accurate on ``rgb`` itself."""
        config = self.config
        if not config.strokes:
            regions = _sightings(self.detector, pictures, config)[0]
            return TextFinding(_grown(regions, regions, config.grow_pixels))
        seen = self.sightings(rgb, rgb8, pictures)
        regions, found, faint, overlay = seen.regions, seen.strokes, seen.faint, seen.overlay
        # the mark's own pixels (its faint antialiased edge included) replace the boxes of the faint regions
        # holding any of it, and the strokes of the other regions it explains: they are undone, not filled
        # (the strokes found in regions it explains too little of stay: what it does not undo there is filled)
        reach = overlay.reach if overlay is not None else np.zeros(faint.shape, bool)
        touched = faint & (share_covered(faint, reach) > 0)
        accounted = touched | (share_covered(regions & ~faint, reach, found) >= MIN_EXPLAINED)
        if overlay is not None and not self._undoing_unreads(rgb, overlay, accounted):
            # every line it was found in still reads with it undone: their text is not the mark (planks
            # of a fence between a dark credit's letters taken for a white one), so it is neither undone
            # nor does it account for them
            overlay, reach, accounted = None, np.zeros(faint.shape, bool), np.zeros(faint.shape, bool)
        # a faint region no mark accounts for is kept whole: it must at least be shaped like a line, be seen
        # more than once (one view alone fires on foliage and gravel) or continue a line that was, and be read
        believable = _line_shaped(faint, config.min_line_aspect) & _seen_enough(regions, seen.views, config.min_views)
        believable = self._read(pictures, faint & ~accounted & believable)
        blobs = faint & ~accounted & ~believable
        text = _grown(found & ~accounted & ~blobs, regions, config.grow_pixels)
        return TextFinding(_with_fringe(rgb8, text, config.fringe_pixels) | reach, overlay)

    def sightings(self, rgb: np.ndarray, rgb8: np.ndarray, pictures: list[np.ndarray],
                  shown: np.ndarray | None = None) -> _Sightings:
        """The text regions the detector sees on ``pictures``, their strokes on ``rgb``, and the
        semi-transparent mark among them (followed, and only if it reads), its strokes looked for
        on ``shown`` (uint8 H x W; the photo's grey by default)."""
        config = self.config
        regions, views = _sightings(self.detector, pictures, config)
        found, faint = _strokes(rgb8, regions, config.faint_contrast)
        missed = self._split_off_the_text(rgb8, regions & ~faint, found)
        found, faint = found | missed, faint | missed
        overlay = find_overlay(rgb, faint, regions, found, shown) if config.unblend else None
        if overlay is not None and config.follow_mark:
            # no thickness limit on the mark's evidence picture: the blobs it guards against are the photo's
            # (petals, boats), and a large centred mark's letters are thicker than any caption's
            evidence_config = replace(config, max_kernel_thickness=1.0)
            overlay = follow(rgb, overlay, lambda picture: _text_regions(self.detector, [picture], evidence_config))
        if overlay is not None and not self._mark_reads(pictures, regions, overlay):
            overlay = None
        return _Sightings(regions, views, found, faint, overlay)

    def _read(self, pictures: list[np.ndarray], lines: np.ndarray) -> np.ndarray:
        """bool H x W: the lines (connected parts of ``lines``) the recognizer reads on one of
        ``pictures`` (all of them without a recognizer)."""
        if self.reader is None:
            return lines
        read = np.zeros(lines.shape, bool)
        for line in _largest_first(lines):
            if any(self.reader.reads(picture, line) for picture in pictures):
                read |= line
        return read

    def _split_off_the_text(self, rgb8: np.ndarray, lines: np.ndarray, strokes: np.ndarray) -> np.ndarray:
        """bool H x W: the ``lines`` read on the photo whose ``strokes`` alone (dark on white)
        read as under half as many characters, however unsure: the split took something else
        for the text (a bright blob of bokeh beside a dark credit's letters), so the line is
        better kept whole (none without a recognizer)."""
        if self.reader is None or not lines.any():
            return np.zeros(lines.shape, bool)
        alone = _dark_on_white(strokes)
        missed = np.zeros(lines.shape, bool)
        for line in _largest_first(lines):
            read = self.reader.characters(rgb8, line)
            if read > 0 and self.reader.characters(alone, line, confidence=0.0) < read / 2:
                missed |= line
        return missed

    def _undoing_unreads(self, rgb: np.ndarray, overlay: Overlay, lines: np.ndarray) -> bool:
        """Whether one of ``lines`` (its largest first) no longer reads with ``overlay`` undone,
        as the mark's own lines do (always without a recognizer, or lines to ask)."""
        if self.reader is None or not lines.any():
            return True
        undone = quantize(overlay.undo(rgb)[0])
        return any(not self.reader.reads(undone, line) for line in _largest_first(lines))

    def _mark_reads(self, pictures: list[np.ndarray], regions: np.ndarray, overlay: Overlay) -> bool:
        """Whether the recognizer reads one of the lines holding the mark, on one of ``pictures``
        or on a picture of the mark alone (dark on white): a mark read in a face or a rock's shading
        holds no characters. The largest few lines are asked; the first read is enough."""
        if self.reader is None:
            return True
        pictures = [*pictures, _dark_on_white(overlay.alpha / max(float(overlay.alpha.max()), 1e-6))]
        holding = regions & (share_covered(regions, overlay.covers) > 0)
        return any(self.reader.reads(picture, line, least=MARK_CHARACTERS)
                   for line in itertools.islice(_largest_first(holding), MARK_LINES_READ) for picture in pictures)


def _largest_first(lines: np.ndarray) -> Iterator[np.ndarray]:
    """The connected parts of ``lines`` (bool H x W), one bool mask each, largest first."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), connectivity=8)
    for label in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA]):
        yield labels == label


def _dark_on_white(weight: np.ndarray) -> np.ndarray:
    """uint8 RGB picture of ``weight`` (0..1, or bool) as ink: black where 1, white where 0."""
    grey = np.round(255 * (1 - weight.astype(np.float32))).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _colourless(rgb8: np.ndarray) -> np.ndarray:
    """A grey picture of how little colour each pixel has (white where grey): a white
    or grey mark drawn over colourful ground takes its colour away."""
    return np.repeat(255 - cv2.cvtColor(rgb8, cv2.COLOR_RGB2HSV)[..., 1:2], 3, axis=2)


def _line_shaped(regions: np.ndarray, min_aspect: float) -> np.ndarray:
    """bool H x W: the regions (connected parts of ``regions``) at least ``min_aspect``
    times as long as they are thick, whichever way they run, or beside another region
    (within their own length: a piece of a line). Texture the detector took for text
    comes in lone round blobs; a line of text is long."""
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    shaped = np.zeros(count, bool)
    for label in range(1, count):
        region = labels == label
        length, thickness = _extent(region)
        if length >= min_aspect * max(1.0, thickness):
            shaped[label] = True
            continue
        side = 2 * int(length) + 1
        near = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0
        shaped[label] = bool((near & regions & ~region).any())
    return shaped[labels]


def _extent(region: np.ndarray) -> tuple[float, float]:
    """(length, thickness) of ``region``: the sides of the smallest rotated box around it."""
    _, sides, _ = cv2.minAreaRect(np.column_stack(np.nonzero(region)[::-1]).astype(np.float32))
    return float(max(sides)), float(min(sides))


def _seen_enough(regions: np.ndarray, seen: np.ndarray, min_views: int) -> np.ndarray:
    """bool H x W: the regions (connected parts of ``regions``) that ``min_views`` of the
    detector's views saw (``seen``: views per pixel), and those that continue a line
    that was, piece by piece (a gap no longer than the longer piece). A line of text
    shows at both sizes or on both pictures, while the texture the detector fires on
    mostly shows on one; so may the faintest digits of a date stamp, beside the rest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(regions.astype(np.uint8), connectivity=8)
    lengths = [0.0] + [_extent(labels == label)[0] for label in range(1, count)]
    reached = [set() for _ in range(count)]  # the pieces within either one's length of each piece
    for label in range(1, count):
        reach = int(lengths[label])
        x, y, w, h, _ = stats[label]
        box = np.s_[max(0, y - reach):y + h + reach, max(0, x - reach):x + w + reach]
        near = cv2.distanceTransform((labels[box] != label).astype(np.uint8), cv2.DIST_L2, 3) <= reach
        for other in np.unique(labels[box][near]):
            if other not in (0, label):
                reached[label].add(int(other))
                reached[int(other)].add(label)
    enough = np.zeros(count, bool)
    enough[np.unique(labels[seen >= min_views])] = True
    enough[0] = False
    waiting = [label for label in range(1, count) if enough[label]]
    while waiting:
        for other in reached[waiting.pop()]:
            if not enough[other]:
                enough[other] = True
                waiting.append(other)
    return enough[labels]


def view_sizes(shape: tuple[int, ...], config: TextConfig) -> tuple[int, ...]:
    """The long sides the detector sees an image of ``shape`` at: ``config.sizes``, each
    at most ``max_upscale`` times the image's own long side (in the detector's steps of 32)."""
    most = max(32, int(config.max_upscale * max(shape[:2]) / 32) * 32)
    return tuple(sorted({min(size, most) for size in config.sizes}))


def _sightings(detector: TextDetector, pictures: list[np.ndarray], config: TextConfig) -> tuple[np.ndarray, np.ndarray]:
    """(bool H x W: the text lines the detector sees on any of ``pictures`` at any size,
    int H x W: on how many of those views, each picture at each size, each line shows)."""
    views = [detector.probability(picture, size) > config.threshold for picture in pictures
             for size in view_sizes(pictures[0].shape, config)]
    regions = _regions(np.logical_or.reduce(views), config.unclip, config.max_kernel_thickness)
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    seen = np.zeros(count, np.int32)
    area = np.bincount(labels.ravel(), minlength=count)
    for kernels in views:  # a view sees a line when its kernel covers a part of it, not a speck
        seen += np.bincount(labels[kernels], minlength=count) >= MIN_SIGHTING * area
    seen[0] = 0
    return regions, seen[labels]


def _text_regions(detector: TextDetector, pictures: list[np.ndarray], config: TextConfig) -> np.ndarray:
    """bool H x W: the text lines the detector sees on any of ``pictures`` at any size."""
    return _sightings(detector, pictures, config)[0]


def find_text(rgb: np.ndarray, config: TextConfig = TextConfig(), detector: TextDetector | None = None) -> np.ndarray:
    """bool H x W: the text on ``rgb`` (float32 RGB in [0, 1])."""
    return detect_text(rgb, config, detector).mask


def _grown(found: np.ndarray, regions: np.ndarray, pixels: int) -> np.ndarray:
    """``found`` grown by ``pixels`` (the antialiased edge and outline), within the regions grown as much."""
    if not pixels or not found.any():
        return found
    side = 2 * pixels + 1
    grown = cv2.dilate(found.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0
    return grown & (cv2.dilate(regions.astype(np.uint8), np.ones((side, side), np.uint8)) > 0)
