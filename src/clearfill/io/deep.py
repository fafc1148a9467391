"""PNG and TIFF writers for 16-bit colour and 16-bit gray with alpha: the sample
layouts Pillow can read but not write. Both keep the ICC profile and EXIF (OpenCV,
which can write the pixels, drops them)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA
_EXIF_HEADER = b"Exif\x00\x00"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG of ``pixels`` (uint16, H x W x 1..4 channels)."""
    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    # Filter "Up" on every row: each byte minus the one above (mod 256) compresses
    # photographs well and is one vectorised subtraction.
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), np.uint8))
    scanlines = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1)
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[channels], 0, 0, 0))]
    if icc_profile:
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(_chunk(b"eXIf", exif.removeprefix(_EXIF_HEADER)))
    chunks.append(_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)))
    chunks.append(_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)


def tiff_bytes(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit TIFF of ``pixels`` (uint16, H x W x 3 or 4; the 4th is unassociated
    alpha), deflate-compressed in one strip, EXIF tags in IFD0 and its sub-IFDs."""
    height, width, channels = pixels.shape
    data = zlib.compress(np.ascontiguousarray(pixels, dtype="<u2").tobytes(), 6)
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        tags = Image.Exif()
        tags.load(exif)
        for tag, value in tags.items():
            ifd[tag] = tags.get_ifd(tag) if tag in (0x8769, 0x8825) else value  # sub-IFDs written in place
    for tag, value, kind in (
        (256, width, TiffTags.LONG), (257, height, TiffTags.LONG),
        (258, (16,) * channels, TiffTags.SHORT), (259, 8, TiffTags.SHORT),  # deflate
        (262, 2, TiffTags.SHORT),  # RGB
        (273, 0, TiffTags.LONG),  # strip offset: Pillow adds where the data lands, after the IFD
        (277, channels, TiffTags.SHORT), (278, height, TiffTags.LONG),
        (279, len(data), TiffTags.LONG), (284, 1, TiffTags.SHORT),
        (339, (1,) * channels, TiffTags.SHORT),  # unsigned integers
    ):
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    if channels == 4:
        ifd[338] = (2,)  # extra sample: unassociated alpha
        ifd.tagtype[338] = TiffTags.SHORT
    if icc_profile:
        ifd[34675] = icc_profile
        ifd.tagtype[34675] = TiffTags.UNDEFINED
    header = b"II*\x00" + struct.pack("<I", 8)
    return header + ifd.tobytes(8) + data
