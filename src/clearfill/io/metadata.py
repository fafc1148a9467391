"""EXIF as clearfill carries it from an input to its output: orientation applied to
the pixels (and then dropped), a TIFF's own structural tags never mistaken for
EXIF, corrupt EXIF dropped with one warning."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from PIL import Image

from ..console import one_line
from ..errors import ClearfillWarning, InvalidInputError

ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# IFD0 tags that describe the photograph. Everything else Pillow reports in a TIFF's
# IFD0 (sizes, strip offsets, sample format, compression, ...) describes that file's
# layout and would corrupt another file if written into it.
DESCRIPTIVE_TAGS = frozenset({
    0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x013C,  # description, make, model, software, date, artist, host
    0x011A, 0x011B, 0x0128,  # resolution and its unit
    0x8298, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F,  # copyright; Windows title, comment, author, keywords, subject
})

# EXIF orientation -> (mirror left-right first, then rotate k x 90 degrees counter-clockwise)
_ORIENTATION_OPS = {
    2: (True, 0), 3: (False, 2), 4: (True, 2), 5: (True, 1), 6: (False, 3), 7: (True, 3), 8: (False, 1),
}


def read_exif(image: Image.Image) -> tuple[Image.Exif, str | None]:
    """The file's EXIF with its sub-IFDs loaded, and why it was dropped (then it is
    empty) when Pillow finds it corrupt. Call it inside ``collect_warnings``: Pillow
    reports most corruption as warnings, some of them already while opening."""
    try:
        exif = image.getexif()
        for ifd in (EXIF_IFD, GPS_IFD):
            if ifd in exif:
                exif.get_ifd(ifd)
    except Exception as exc:  # Pillow raises many kinds on malformed EXIF
        return Image.Exif(), one_line(exc)
    return exif, None


def is_exif_trouble(note: str) -> bool:
    """Whether a Pillow warning is about the EXIF block (its IFD parser's words)."""
    return any(word in note for word in ("EXIF", "Exif", "Tag data", "tag "))


@contextlib.contextmanager
def collect_warnings(notes: list[str]):
    """Collect what Pillow warns about while reading, as one-line notes, instead of
    letting it print its own multi-line warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # clearfill's own limit applies
        warnings.simplefilter("ignore", ResourceWarning)
        yield
    for warning in caught:
        note = one_line(warning.message)
        if note not in notes:
            notes.append(note)


def orientation_of(exif: Image.Exif, what: str) -> int:
    """The EXIF orientation as 1..8 (1 when absent); anything else is an error."""
    value = exif.get(ORIENTATION, 1)
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, np.integer)) and 1 <= value <= 8:
        return int(value)
    raise InvalidInputError(f"{what} has an invalid EXIF orientation {value!r} (it must be a number 1 to 8)")


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H x W or H x W x C) turned upright for an EXIF orientation."""
    mirror, quarter_turns = _ORIENTATION_OPS.get(orientation, (False, 0))
    if mirror:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(np.rot90(pixels, quarter_turns))


def exif_to_keep(exif: Image.Exif, file_format: str | None) -> bytes | None:
    """The EXIF to write into the output: without the orientation (the pixels are
    upright now) and, from a TIFF, without the tags that describe the TIFF itself."""
    kept = Image.Exif()
    for tag, value in exif.items():
        if tag == ORIENTATION or (file_format == "TIFF" and tag not in DESCRIPTIVE_TAGS | {EXIF_IFD, GPS_IFD}):
            continue
        kept[tag] = exif.get_ifd(tag) if tag in (EXIF_IFD, GPS_IFD) else value
    if not len(kept):
        return None
    try:
        return kept.tobytes()
    except Exception:  # values Pillow read but cannot write back (a malformed tag type)
        warnings.warn("the EXIF data could not be written back and was dropped", ClearfillWarning, stacklevel=3)
        return None
