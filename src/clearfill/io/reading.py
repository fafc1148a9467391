"""Reading images and masks from files, open files, PIL images and arrays into
their own representation (``modes.Pixels``), upright, with the size checked
before any pixel is decoded. Every way a file can be unusable is an
InvalidInputError naming it."""

from __future__ import annotations

import io as stdio
import os
import stat
import struct
import typing
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..console import one_line
from ..errors import ClearfillWarning, ImageTooLargeError, InvalidInputError
from ..imaging import quantize, resize, to_float
from . import metadata
from .modes import Pixels

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above this, refuse before decoding.
MOST_JPEG_SCANS = 200

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, typing.BinaryIO]

_KEPT_AS_IS = frozenset({"1", "L", "LA", "RGB", "RGBA", "CMYK", "LAB"})
_PILLOW_16_BIT_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class LoadedImage:
    """An image as the pipeline sees it, plus what is needed to write it back faithfully.

    ``rgb`` is float32 H x W x 3 in [0, 1]; ``pixels`` holds the file's own
    representation, upright (see ``modes``).
    """

    rgb: np.ndarray
    pixels: Pixels
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # to write back: no orientation, no TIFF layout tags
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def mode(self) -> str:
        return self.pixels.mode

    @property
    def storage(self) -> np.ndarray:
        return self.pixels.values

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels.alpha


# ----------------------------------------------------------------------------- opening


def _label(what: str, source) -> str:
    return f"{what} {source}" if isinstance(source, (str, os.PathLike)) else what


def _check_size(size: tuple[int, int], label: str, max_pixels: int | None) -> None:
    width, height = size
    if width == 0 or height == 0:
        raise InvalidInputError(f"{label} has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label} is {width}x{height} = {width * height / 1e6:.1f} MP, over the limit of "
            f"{max_pixels / 1e6:.1f} MP", setting="max_pixels")


def regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path``, checked to be a regular file (after links) before anything reads it: a
    FIFO would block the read forever, a device never end."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InvalidInputError(f"{what} not found: {path}") from None
    except OSError as exc:  # no permission to look, a name too long, a loop of links
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InvalidInputError(f"{what} is a folder, not a file: {path}")
    if not stat.S_ISREG(mode):
        raise InvalidInputError(f"{what} {path} is not a regular file (a FIFO, socket or device)")
    return path


def _open(source, what: str, max_pixels: int | None) -> Image.Image:
    """Open lazily: only the header is read, so the size is checked before decoding.
    ``max_pixels`` is clearfill's own bomb limit; Pillow's process-wide one is left as
    the caller set it, and passed over only for an image ``max_pixels`` allows."""
    label = _label(what, source)
    if isinstance(source, (str, os.PathLike)):
        source = regular_file(source, what)
    try:
        try:
            image = Image.open(source)
        except Image.DecompressionBombError:  # over Pillow's limit, and ours may allow it
            image = _open_past_pillows_limit(source, label, max_pixels)
    except UnidentifiedImageError:
        raise InvalidInputError(f"{label} is not an image (or an unsupported format)") from None
    except InvalidInputError:
        raise
    except Exception as exc:  # malformed headers and chunks raise many kinds (a zTXt bomb: ValueError)
        raise InvalidInputError(f"cannot read {label}: {one_line(exc, 200)}") from None
    _check_size(image.size, label, max_pixels)
    return image


def _open_past_pillows_limit(source, label: str, max_pixels: int | None) -> Image.Image:
    """Open an image that Pillow's own bomb limit refuses, by its format's opener (which
    reads only the header), when ``max_pixels`` allows its size; else refuse it as too large."""
    if isinstance(source, Path):
        data = stdio.BytesIO(source.read_bytes())
    else:
        source.seek(0)
        data = stdio.BytesIO(source.read())
    prefix = data.read(16)
    Image.init()
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        if accept is None or accept(prefix) is True:
            data.seek(0)
            try:
                image = factory(data, "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
            _check_size(image.size, label, max_pixels)
            return image
    raise UnidentifiedImageError(label)


def _check_scans(image: Image.Image, source, label: str) -> None:
    """A progressive JPEG is decoded once per scan over the whole image: a crafted file with
    thousands of tiny scans takes minutes. Real encoders write about ten."""
    if image.format != "JPEG" or not image.info.get("progressive"):
        return
    data = source.getvalue() if isinstance(source, stdio.BytesIO) else Path(source).read_bytes()
    scans = data.count(b"\xff\xda")  # start-of-scan markers: entropy-coded data escapes every 0xff byte
    if scans > MOST_JPEG_SCANS:
        raise InvalidInputError(f"{label} is a progressive JPEG of {scans} scans (at most {MOST_JPEG_SCANS} are "
                                "decoded): a file made to be slow to decode")


def _decode(image: Image.Image, label: str) -> None:
    try:
        image.load()
    except Exception as exc:
        raise InvalidInputError(f"{label} is truncated or corrupt: {one_line(exc, 200)}") from None


def _rawmode(image: Image.Image) -> str:
    """How the file stores its samples (read before ``load()`` clears it): Pillow
    reads 16-bit colour and 16-bit gray+alpha as 8-bit, so those go to OpenCV."""
    for tile in getattr(image, "tile", None) or []:
        args = tile[3] if isinstance(tile, tuple) else tile.args
        rawmode = args[0] if isinstance(args, tuple) else args
        if isinstance(rawmode, str):
            return rawmode
    return ""


# ----------------------------------------------------------------------------- pixels


def _palette_pixels(image: Image.Image) -> Pixels:
    """Indices, the palette as the file has it (grown with black if an index points
    past its end), and per-entry alpha from the file's transparency."""
    indices = np.asarray(image)
    palette = np.asarray(image.getpalette("RGB") or [0, 0, 0], np.uint8).reshape(-1, 3)[:256]
    needed = int(indices.max()) + 1
    if needed > len(palette):
        palette = np.concatenate([palette, np.zeros((needed - len(palette), 3), np.uint8)])
    transparency = image.info.get("transparency")
    alpha = None
    if isinstance(transparency, int) and transparency < len(palette):
        alpha = np.full(len(palette), 255, np.uint8)
        alpha[transparency] = 0
    elif isinstance(transparency, bytes):
        alpha = np.full(len(palette), 255, np.uint8)
        table = np.frombuffer(transparency[: len(palette)], np.uint8)
        alpha[: len(table)] = table
    return Pixels(indices, "P", palette=palette, palette_alpha=alpha)


def _sample_pixels(values: np.ndarray, mode: str, label: str) -> Pixels:
    """32-bit gray ("F", "I"): finite values, and the range the pipeline's 0..1 maps to."""
    if not np.isfinite(values).all():
        raise InvalidInputError(f"{label} has NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if mode == "F" and 0.0 <= low and high <= 1.0:
        low, high = 0.0, 1.0
    return Pixels(values, mode, value_range=(low, high if high > low else low + 1.0))


def _deep_pixels(data: bytes, rawmode: str, size: tuple[int, int], label: str) -> Pixels:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # ignores EXIF orientation
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3 or decoded.shape[1::-1] != size:
        raise InvalidInputError(f"{label} is a 16-bit image that cannot be decoded")
    if rawmode.startswith("LA;16"):  # OpenCV spreads gray+alpha over BGRA
        return Pixels(np.ascontiguousarray(decoded[..., [0, 3]]), "LA;16")
    if decoded.shape[2] == 4:
        return Pixels(cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA), "RGBA;16")
    return Pixels(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), "RGB;16")


def _pillow_pixels(image: Image.Image, label: str) -> Pixels:
    mode = image.mode
    if mode in _KEPT_AS_IS:
        return Pixels(np.asarray(image), mode)
    if mode == "P":
        return _palette_pixels(image)
    if mode in _PILLOW_16_BIT_GRAY:
        return Pixels(np.asarray(image).astype(np.uint16), "I;16")
    if mode in ("F", "I"):
        return _sample_pixels(np.asarray(image).astype(np.float32 if mode == "F" else np.int32), mode, label)
    target = {"PA": "RGBA", "RGBa": "RGBA", "La": "LA"}.get(mode, "RGB")  # YCbCr, HSV, RGBX, ...
    try:
        return Pixels(np.asarray(image.convert(target)), target)
    except Exception as exc:
        raise InvalidInputError(f"{label} has a pixel layout clearfill cannot read ({mode}): {one_line(exc, 200)}") \
            from None


_ARRAY_MODES = {  # (dtype kind, channels) -> mode
    ("u1", 1): "L", ("u1", 2): "LA", ("u1", 3): "RGB", ("u1", 4): "RGBA",
    ("u2", 1): "I;16", ("u2", 2): "LA;16", ("u2", 3): "RGB;16", ("u2", 4): "RGBA;16",
}


def _array_pixels(array: np.ndarray, label: str) -> Pixels:
    """An array as pixels: bool, uint8, uint16, or float in [0, 1] (gray stays
    float, colour becomes 16-bit); H x W or H x W x C with C = 1 to 4."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
        raise InvalidInputError(f"{label} array must be H x W or H x W x C with C = 1 to 4, got shape {array.shape}")
    _check_size(array.shape[1::-1], label, None)
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.dtype == bool:
        if channels != 1:
            raise InvalidInputError(f"{label} array of bool must have one channel, got shape {array.shape}")
        return Pixels(array.reshape(array.shape[:2]), "1")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{label} array has NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise InvalidInputError(f"{label} array of floats must lie in [0, 1], got "
                                    f"{float(array.min()):g} to {float(array.max()):g}")
        if channels == 1:
            return Pixels(array.reshape(array.shape[:2]).astype(np.float32), "F")
        array = quantize(array, np.uint16)
    key = (array.dtype.str.lstrip("<>|="), channels)
    if key not in _ARRAY_MODES:
        raise InvalidInputError(f"{label} array has dtype {array.dtype}; use uint8, uint16, bool or floats in [0, 1]")
    values = array.reshape(array.shape[:2]) if channels == 1 else array
    return Pixels(np.ascontiguousarray(values.astype(array.dtype.newbyteorder("="))), _ARRAY_MODES[key])


@dataclass(frozen=True)
class _Read:
    pixels: Pixels
    image: Image.Image | None = None
    exif: Image.Exif | None = None


def _read(source, what: str, max_pixels: int | None) -> _Read:
    """Pixels in their own representation, upright, from any ImageSource. What Pillow
    warns about becomes one ClearfillWarning naming the file; corrupt EXIF is dropped."""
    label = _label(what, source)
    if isinstance(source, np.ndarray):
        return _Read(_array_pixels(source, label))
    if not isinstance(source, (str, os.PathLike, Image.Image)):
        if not hasattr(source, "read"):
            raise InvalidInputError(f"{what} must be a path, an open file, a PIL image or an array, "
                                    f"got {type(source).__name__}")
        source = stdio.BytesIO(source.read())  # any stream, seekable or not; its bytes are read twice below
    notes: list[str] = []
    with metadata.collect_warnings(notes):
        if isinstance(source, Image.Image):
            image = source
            _check_size(image.size, label, max_pixels)
        else:
            image = _open(source, what, max_pixels)
        rawmode = _rawmode(image)
        deep = rawmode.startswith("LA;16") or (image.mode in ("RGB", "RGBA") and ";16" in rawmode)
        if not isinstance(source, Image.Image):
            _check_scans(image, source, label)
        _decode(image, label)
        exif, exif_problem = metadata.read_exif(image)
    if exif_problem is None and any(metadata.is_exif_trouble(note) for note in notes):
        exif, exif_problem = Image.Exif(), next(note for note in notes if metadata.is_exif_trouble(note))
    if exif_problem is not None:
        warnings.warn(f"{label}: its EXIF data is corrupt and was dropped ({exif_problem})", ClearfillWarning,
                      stacklevel=3)
    for note in notes:
        if not metadata.is_exif_trouble(note):
            warnings.warn(f"{label}: {note}", ClearfillWarning, stacklevel=3)
    orientation = metadata.orientation_of(exif, label)
    if deep and not isinstance(source, Image.Image):
        data = source.getvalue() if isinstance(source, stdio.BytesIO) else Path(source).read_bytes()
        pixels = _deep_pixels(data, rawmode, image.size, label)
    else:
        pixels = _pillow_pixels(image, label)
    return _Read(replace(pixels, values=metadata.orient(pixels.values, orientation)), image, exif)


def load_image(source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image (path, open file, PIL image or array) into the pipeline's
    convention; ``max_pixels=None`` lifts the size limit."""
    read = _read(source, "image", max_pixels)
    file_format = read.image.format if read.image is not None else None
    return LoadedImage(
        rgb=read.pixels.rgb(),
        pixels=read.pixels,
        format=file_format,
        icc_profile=read.image.info.get("icc_profile") if read.image is not None else None,
        exif=metadata.exif_to_keep(read.exif, file_format) if read.exif is not None else None,
        path=Path(source) if isinstance(source, (str, os.PathLike)) else None,
    )


def load_mask(
    source: ImageSource,
    size: tuple[int, int],
    *,
    resize_mask: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask as float32 H x W in [0, 1] (1 = remove) for an image of ``size`` (w, h).

    Gray and 1-bit masks are used as they are (white = remove); a colour mask by its
    brightest channel; a mask with a non-constant alpha channel by its alpha (a
    painted layer over transparency).
    """
    pixels = _read(source, "mask", max_pixels).pixels
    alpha = pixels.alpha
    if alpha is not None and alpha.min() != alpha.max():
        values = to_float(alpha)
    else:
        values = pixels.brightest()
    height, width = values.shape
    if (width, height) != tuple(size):
        if not resize_mask:
            raise InvalidInputError(f"the mask is {width}x{height} but the image is {size[0]}x{size[1]}",
                                    setting="resize_mask")
        values = resize(values, size, "bilinear")
    return np.ascontiguousarray(values, dtype=np.float32)
