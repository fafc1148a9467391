"""Reading and writing images and masks: the only place that knows about files.

Everything inside the pipeline is float32 RGB (see ``imaging``); this package turns
files into that and back, keeping what a photographer cares about: EXIF
orientation applied, ICC profile and EXIF kept where the output format can hold
them, alpha untouched, the file's own mode and depth (palette, 1-bit, 16-bit,
CMYK, LAB, 32-bit float and integer gray) kept where the format allows, and every
pixel the pipeline did not change written back exactly as it was read.

``reading``: files, open files, PIL images and arrays in; ``modes``: each storage
mode to and from float RGB; ``writing``: formats, fallbacks, atomic files;
``deep``: the 16-bit writers Pillow lacks; ``metadata``: EXIF.
"""

from .modes import Pixels
from .reading import DEFAULT_MAX_PIXELS, ImageSource, LoadedImage, load_image, load_mask, regular_file
from .writing import (
    FORMATS,
    JPEG_QUALITY,
    MODES_HELD,
    atomic_writer,
    check_destination,
    encode_image,
    output_errors,
    output_format,
    save_image,
    save_picture,
    to_pil,
)

__all__ = [
    "DEFAULT_MAX_PIXELS", "FORMATS", "JPEG_QUALITY", "MODES_HELD", "ImageSource", "LoadedImage", "Pixels",
    "atomic_writer", "check_destination", "encode_image", "load_image", "load_mask", "output_format",
    "output_errors", "regular_file", "save_image", "save_picture", "to_pil",
]
