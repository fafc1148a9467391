"""Reading and writing images and masks: the only place that knows about files.

Everything inside the pipeline is float32 RGB (see ``imaging``); this module turns
files into that and back, keeping what a photographer cares about: EXIF
orientation applied, ICC profile and EXIF kept where the output format can hold
them, alpha untouched, 16-bit depth kept where the format allows, and every pixel
the pipeline did not change written back exactly as it was read.
"""

from __future__ import annotations

import contextlib
import errno
import io as stdio
import os
import typing
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InvalidInputError, OutputError
from .imaging import luma, quantize, resize, to_float

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: new files get the usual permissions, not mkstemp's 0600
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above this, refuse before decoding.
JPEG_QUALITY = 95

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, typing.BinaryIO]

# Output formats by extension, and the storage modes each can hold as they are.
FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
_NATIVE_MODES = {
    "PNG": {"L", "LA", "RGB", "RGBA", "I;16", "RGB;16", "RGBA;16"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
    "TIFF": {"L", "LA", "RGB", "RGBA", "CMYK", "I;16", "RGB;16", "RGBA;16"},
    "BMP": {"L", "RGB", "RGBA"},
}
_METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}


@dataclass(frozen=True)
class LoadedImage:
    """An image as the pipeline sees it, plus what is needed to write it back faithfully.

    ``rgb`` is float32 H x W x 3 in [0, 1]. ``storage`` holds the pixels in the
    file's own representation (after EXIF orientation): uint8 or uint16, with its
    alpha channel if any; ``mode`` names that representation ("RGB", "L", "LA",
    "RGBA", "CMYK", "I;16", "RGB;16", "RGBA;16").
    """

    rgb: np.ndarray
    storage: np.ndarray
    mode: str
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def alpha(self) -> np.ndarray | None:
        return self.storage[..., -1] if self.mode in ("LA", "RGBA", "RGBA;16") else None


# ----------------------------------------------------------------------------- reading


def _open(source: ImageSource, what: str, max_pixels: int) -> Image.Image:
    """Open an image file lazily and check its size before any pixel is decoded."""
    if isinstance(source, Image.Image):
        image = source
    elif hasattr(source, "read"):  # a file-like object (bytes fetched from elsewhere)
        try:
            image = Image.open(source)
        except (UnidentifiedImageError, OSError):
            raise InvalidInputError(f"{what} is not an image (or an unsupported format)") from None
    else:
        path = Path(source)
        if not path.exists():
            raise InvalidInputError(f"{what} not found: {path}")
        if path.is_dir():
            raise InvalidInputError(f"{what} is a folder, not an image file: {path}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    image = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = previous
        except UnidentifiedImageError:
            raise InvalidInputError(f"{what} is not an image (or an unsupported format): {path}") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {what} {path}: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} = {width * height / 1e6:.1f} MP, over the limit of "
            f"{max_pixels / 1e6:.1f} MP (raise it with --max-pixels if the file is trusted)"
        )
    if width == 0 or height == 0:
        raise InvalidInputError(f"{what} has no pixels ({width}x{height})")
    return image


def _decode(image: Image.Image, what: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        name = getattr(image, "filename", "") or "input"
        raise InvalidInputError(f"{what} {name} is truncated or corrupt: {exc}") from None


def _raw_bits(image: Image.Image) -> int:
    """8 or 16: the sample depth the file stores (Pillow reads 16-bit RGB as 8-bit)."""
    for tile in getattr(image, "tile", None) or []:
        args = tile[3] if isinstance(tile, tuple) else tile.args
        rawmode = args[0] if isinstance(args, tuple) else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
    return 8


_ORIENTATION_OPS = {  # EXIF orientation -> (transpose first, then rotate k x 90 counter-clockwise)
    2: (True, 0), 3: (False, 2), 4: (True, 2), 5: (True, 1), 6: (False, 3), 7: (True, 3), 8: (False, 1),
}


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    flip, quarter_turns = _ORIENTATION_OPS.get(orientation, (False, 0))
    if flip:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(np.rot90(pixels, quarter_turns))


def _read_16bit_color(source, orientation: int) -> tuple[np.ndarray, str]:
    if hasattr(source, "getvalue"):
        data = np.frombuffer(source.getvalue(), dtype=np.uint8)
    else:
        data = np.fromfile(source, dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 3:
        raise InvalidInputError("cannot decode the 16-bit image")
    code = cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
    pixels = _orient(cv2.cvtColor(pixels, code), orientation)
    return pixels, "RGBA;16" if pixels.shape[2] == 4 else "RGB;16"


def _storage_of(image: Image.Image) -> tuple[np.ndarray, str]:
    """Pixels in their own representation, for modes Pillow decodes faithfully."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return np.asarray(image), mode
    if mode == "1":
        return np.asarray(image.convert("L")), "L"
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image)
        if mode == "F":
            values = np.clip(values, 0, 1) * 65535 if values.max(initial=0) <= 1 else values
        return np.clip(values, 0, 65535).astype(np.uint16), "I;16"
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB")
        return np.asarray(converted), converted.mode
    converted = image.convert("RGBA" if "A" in mode else "RGB")  # YCbCr, LAB, HSV, La, RGBa, ...
    return np.asarray(converted), converted.mode


def _rgb_of(storage: np.ndarray, mode: str) -> np.ndarray:
    """float32 RGB of a storage array (alpha dropped, gray replicated, CMYK converted)."""
    if mode == "CMYK":
        rgb = np.asarray(Image.fromarray(storage, "CMYK").convert("RGB"))
    elif mode in ("L", "LA", "I;16"):
        gray = storage[..., 0] if storage.ndim == 3 else storage
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:
        rgb = storage[..., :3]
    return np.ascontiguousarray(to_float(rgb))


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file (or PIL image / uint8 array) into the pipeline's convention."""
    if isinstance(source, np.ndarray):
        source = Image.fromarray(source)
    image = _open(source, "image", max_pixels)
    sixteen_bit_colour = image.mode in ("RGB", "RGBA") and _raw_bits(image) == 16  # before load() clears tiles
    _decode(image, "image")
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    exif = image.getexif()
    orientation = int(exif.get(0x0112, 1) or 1)
    if sixteen_bit_colour and not isinstance(source, Image.Image):
        storage, mode = _read_16bit_color(source, orientation)
    else:
        storage, mode = _storage_of(ImageOps.exif_transpose(image))
    if 0x0112 in exif:
        del exif[0x0112]  # the pixels are now upright: do not let viewers rotate them again
    return LoadedImage(
        rgb=_rgb_of(storage, mode),
        storage=storage,
        mode=mode,
        format=image.format,
        icc_profile=image.info.get("icc_profile"),
        exif=exif.tobytes() if len(exif) else None,
        path=path,
    )


def load_mask(
    source: ImageSource,
    size: tuple[int, int],
    *,
    resize_mask: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask as float32 H x W in [0, 1] (1 = remove) for an image of ``size`` (w, h).

    Gray and 1-bit masks are used as they are (255 = remove); a colour mask by its
    brightest channel; a mask with a non-constant alpha channel by its alpha (a
    painted layer over transparency).
    """
    if isinstance(source, np.ndarray):
        values = to_float(source)
        if values.ndim == 3:
            values = values.max(axis=2)
    else:
        image = _open(source, "mask", max_pixels)
        _decode(image, "mask")
        image = ImageOps.exif_transpose(image)
        storage, mode = _storage_of(image)
        values = to_float(storage)
        if values.ndim == 3:
            alpha = values[..., -1] if mode in ("LA", "RGBA") else None
            if alpha is not None and alpha.min() != alpha.max():
                values = alpha
            else:
                values = values[..., : (1 if mode == "LA" else 3)].max(axis=2)
    height, width = values.shape
    if (width, height) != tuple(size):
        if not resize_mask:
            raise InvalidInputError(
                f"mask is {width}x{height} but the image is {size[0]}x{size[1]}; "
                "pass --resize-mask (resize_mask=True) to scale it"
            )
        values = resize(values, size, "bilinear")
    return np.ascontiguousarray(values, dtype=np.float32)


# ----------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        raise InvalidInputError(
            f"cannot tell the output format from {str(path)!r}; use one of {', '.join(sorted(FORMATS))}"
        ) from None


def _storage_like(rgb: np.ndarray, like: LoadedImage, fmt: str) -> tuple[np.ndarray, str]:
    """Encode float RGB in the input's representation, or the nearest one ``fmt`` holds.

    Pixels whose RGB the pipeline left unchanged take the input's stored values
    verbatim, so no colour-space or depth round trip can alter them.
    """
    mode = like.mode if like.mode in _NATIVE_MODES[fmt] else _fallback_mode(like.mode, fmt)
    if mode == like.mode:
        storage = _encode(rgb, mode, like.alpha)
        unchanged = ~np.any(rgb != like.rgb, axis=2)
        storage[unchanged] = like.storage[unchanged]
        return storage, mode
    # A mode change (say 16-bit to 8-bit for JPEG): convert the whole image alike.
    alpha = like.alpha
    if alpha is not None and alpha.dtype == np.uint16:
        alpha = quantize(to_float(alpha), np.uint8)
    return _encode(rgb, mode, alpha), mode


def _fallback_mode(mode: str, fmt: str) -> str:
    """The nearest mode ``fmt`` can store: same channels if possible, else colour, else 8-bit."""
    has_alpha = mode in ("LA", "RGBA", "RGBA;16")
    gray = mode in ("L", "LA", "I;16")
    if has_alpha:
        candidates = ["LA", "RGBA"] if gray else ["RGBA"]
    else:
        candidates = ["L", "RGB"] if gray else ["RGB"]
    for candidate in candidates:
        if candidate in _NATIVE_MODES[fmt]:
            return candidate
    raise InvalidInputError(
        f"the image has an alpha channel that {fmt} cannot store; write .png, .webp or .tiff instead"
    )


def _encode(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> np.ndarray:
    depth = np.uint16 if mode.endswith("16") else np.uint8
    if mode == "CMYK":
        return np.asarray(Image.fromarray(quantize(rgb), "RGB").convert("CMYK")).copy()
    if mode in ("L", "LA", "I;16"):
        channels = [quantize(luma(rgb), depth)]
    else:
        channels = [quantize(rgb[..., c], depth) for c in range(3)]
    if mode in ("LA", "RGBA", "RGBA;16"):
        channels.append(alpha.astype(depth))
    return np.stack(channels, axis=2) if len(channels) > 1 else channels[0]


def _write_bytes(storage: np.ndarray, mode: str, fmt: str, like: LoadedImage, quality: int, target) -> None:
    if mode.endswith(";16") and mode != "I;16":  # Pillow cannot write 16-bit colour; OpenCV can
        code = cv2.COLOR_RGBA2BGRA if storage.shape[2] == 4 else cv2.COLOR_RGB2BGR
        ok, data = cv2.imencode(".png" if fmt == "PNG" else ".tiff", cv2.cvtColor(storage, code))
        if not ok:
            raise InvalidInputError(f"cannot encode a 16-bit {fmt} image")
        target.write(data.tobytes())
        return
    image = Image.fromarray(storage) if mode == "I;16" else Image.fromarray(storage, mode)
    options: dict = {}
    if fmt in _METADATA_FORMATS:
        if like.icc_profile and (mode == like.mode or mode in ("RGB", "RGBA") and like.mode.startswith("RGB")):
            options["icc_profile"] = like.icc_profile
        if like.exif:
            options["exif"] = like.exif
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        options.update(quality=quality, method=4)
    elif fmt == "TIFF":
        options.update(compression="tiff_lzw")
    image.save(target, format=fmt, **options)


@contextlib.contextmanager
def writing(what: str, path: str | os.PathLike):
    """Turn the OSError of writing ``what`` at ``path`` into a one-line OutputError."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def check_destination(path: Path, *, folder: bool = False) -> None:
    """Raise OutputError now, before any work, if ``path`` (a file, or a folder when
    ``folder``) could not be written: something of the other kind in the way, a file
    where a parent folder should be, or no permission."""
    what = "folder" if folder else "output"
    if path.exists() and path.is_dir() != folder:
        raise OutputError(f"cannot write the {what} {path}: it is {'a file' if folder else 'a folder'}")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write the {what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the {what} {path}: no permission to write in {ancestor}")


@contextlib.contextmanager
def atomic_writer(path: Path):
    """Yield a binary file in ``path``'s folder; it replaces ``path`` only if the block
    succeeds. Any OSError on the way (no permission, a folder in the way, a full disk)
    becomes an OutputError and leaves nothing behind."""
    with writing("the output", path):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            os.chmod(temp, 0o666 & ~_UMASK)
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


def encode_image(rgb: np.ndarray, like: LoadedImage, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    """``rgb`` (float32, the input's size) as a file of format ``fmt`` ("PNG", "JPEG", ...),
    keeping the input's mode, depth, alpha and metadata wherever that format can."""
    storage, mode = _storage_like(rgb, like, fmt)
    buffer = stdio.BytesIO()
    _write_bytes(storage, mode, fmt, like, quality, buffer)
    return buffer.getvalue()


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    like: LoadedImage,
    *,
    quality: int = JPEG_QUALITY,
) -> Path:
    """Write ``rgb`` atomically, in the format ``path``'s extension names (see ``encode_image``)."""
    path = Path(path)
    data = encode_image(rgb, like, output_format(path), quality=quality)
    with atomic_writer(path) as handle:
        handle.write(data)
    return path


def to_pil(rgb: np.ndarray, like: LoadedImage) -> Image.Image:
    """The result as a PIL image in the input's mode (16-bit colour becomes 8-bit: Pillow
    has no such mode)."""
    storage, mode = _storage_like(rgb, like, "TIFF")
    if mode.endswith(";16") and mode != "I;16":
        storage, mode = quantize(to_float(storage)), mode[:-3]
    return Image.fromarray(storage) if mode == "I;16" else Image.fromarray(storage, mode)


def save_picture(path: str | os.PathLike, picture: np.ndarray | Image.Image) -> Path:
    """Write a diagnostic picture (float RGB array or PIL image) as PNG, atomically."""
    path = Path(path)
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(quantize(picture))
    with atomic_writer(path) as handle:
        image.save(handle, format="PNG")
    return path
