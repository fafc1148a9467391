"""Writing results: in the format the output's extension names, in the input's
own mode wherever that format can hold it (else the nearest mode it can, or a
refusal when the nearest would lose data), with the ICC profile and EXIF, and
atomically."""

from __future__ import annotations

import contextlib
import errno
import io as stdio
import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidInputError, OutputError
from ..imaging import quantize, to_float
from . import deep
from .modes import SIXTEEN_BIT_MODES, Pixels, colour_space
from .reading import LoadedImage

JPEG_QUALITY = 95

FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
# The modes each format holds exactly, as written here and read back by ``reading``.
MODES_HELD = {
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16"},
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "LAB", "I;16", "RGB;16", "RGBA;16", "F", "I"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
    "BMP": {"1", "L", "P", "RGB", "RGBA"},
}
_TRANSPARENT_PALETTE_FORMATS = {"PNG"}  # where a palette's transparency survives
_METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
_DEEP_COLOUR = SIXTEEN_BIT_MODES - {"I;16"}  # written by ``deep``, not Pillow


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        raise InvalidInputError(
            f"cannot tell the output format from {str(path)!r}; use one of {', '.join(sorted(FORMATS))}"
        ) from None


def _holds(fmt: str, pixels: Pixels, mode: str) -> bool:
    if mode not in MODES_HELD[fmt]:
        return False
    return not (mode == "P" and pixels.palette_alpha is not None and fmt not in _TRANSPARENT_PALETTE_FORMATS)


def output_pixels(rgb: np.ndarray, like: LoadedImage, fmt: str) -> Pixels:
    """``rgb`` in the input's representation, or the nearest one ``fmt`` holds."""
    source = like.pixels
    if _holds(fmt, source, source.mode):
        return source.with_rgb(rgb)
    for mode in source.fallbacks():
        if _holds(fmt, source, mode):
            return source.converted(mode, rgb)
    if source.mode in ("F", "I"):
        raise InvalidInputError(f"a 32-bit {'float' if source.mode == 'F' else 'integer'} image can only be "
                                "written as TIFF (.tif), which keeps its values")
    raise InvalidInputError(f"the image has an alpha channel that {fmt} cannot store; write .png, .webp or .tiff "
                            "instead")


def _pillow_image(pixels: Pixels) -> Image.Image:
    if pixels.mode in ("1", "I;16", "F", "I"):
        return Image.fromarray(pixels.values)
    image = Image.fromarray(pixels.values, pixels.mode)
    if pixels.mode == "P":
        image.putpalette(pixels.palette.tobytes())
    return image


def _encode(pixels: Pixels, fmt: str, like: LoadedImage, quality: int) -> bytes:
    same_colours = colour_space(pixels.mode) == colour_space(like.mode)
    icc = like.icc_profile if same_colours and fmt in _METADATA_FORMATS else None
    exif = like.exif if fmt in _METADATA_FORMATS else None
    if pixels.mode in _DEEP_COLOUR:
        values = pixels.values
        return deep.png_bytes(values, icc, exif) if fmt == "PNG" else deep.tiff_bytes(values, icc, exif)
    options: dict = {}
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = exif
    if pixels.mode == "P" and pixels.palette_alpha is not None:
        options["transparency"] = pixels.palette_alpha.tobytes()
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        options.update(quality=quality, method=4)
    elif fmt == "TIFF":
        # LZW goes through libtiff, which cannot write EXIF's sub-IFDs: keep the EXIF, uncompressed.
        options.update(compression=None if exif and _has_sub_ifds(exif) else "tiff_lzw")
    buffer = stdio.BytesIO()
    _pillow_image(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _has_sub_ifds(exif: bytes) -> bool:
    tags = Image.Exif()
    tags.load(exif)
    return any(tag in tags for tag in (0x8769, 0x8825))


def encode_image(rgb: np.ndarray, like: LoadedImage, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    """``rgb`` (float32, the input's size) as a file of format ``fmt`` ("PNG", "JPEG", ...),
    keeping the input's mode, depth, alpha and metadata wherever that format can."""
    return _encode(output_pixels(rgb, like, fmt), fmt, like, quality)


def to_pil(rgb: np.ndarray, like: LoadedImage) -> Image.Image:
    """The result as a PIL image in the input's mode (16-bit colour and gray+alpha
    become 8-bit: Pillow has no such modes)."""
    pixels = output_pixels(rgb, like, "TIFF" if like.mode != "LA;16" else "PNG")
    if pixels.mode in _DEEP_COLOUR:
        pixels = Pixels(quantize(to_float(pixels.values)), pixels.mode[:-3])
    return _pillow_image(pixels)


# ----------------------------------------------------------------------------- files


@contextlib.contextmanager
def output_errors(what: str, path):
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
    with output_errors(f"the {what}", path):  # a folder on the way that cannot even be looked into
        _check_destination(path, folder, what)


def _check_destination(path: Path, folder: bool, what: str) -> None:
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
    becomes an OutputError and leaves nothing behind. The file is new (never an existing
    file or a link followed), with the permissions the process's umask gives."""
    with output_errors("the output", path):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        temp, fd = _new_file(path)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


def _new_file(path: Path) -> tuple[Path, int]:
    """A temporary file beside ``path``, created exclusively (``O_EXCL`` never follows or
    reuses anything already there), mode 0666 less the umask, as any new file gets."""
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name beside {path}")


def save_image(path: str | os.PathLike, rgb: np.ndarray, like: LoadedImage, *, quality: int = JPEG_QUALITY) -> Path:
    """Write ``rgb`` atomically, in the format ``path``'s extension names (see ``encode_image``)."""
    path = Path(path)
    data = encode_image(rgb, like, output_format(path), quality=quality)
    with atomic_writer(path) as handle:
        handle.write(data)
    return path


def save_picture(path: str | os.PathLike, picture: np.ndarray | Image.Image) -> Path:
    """Write a diagnostic picture (float RGB array or PIL image) as PNG, atomically."""
    path = Path(path)
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(quantize(picture))
    with atomic_writer(path) as handle:
        image.save(handle, format="PNG")
    return path
