"""clearfill: remove objects from photos and fill the hole so nobody can tell.

    >>> import clearfill
    >>> result = clearfill.remove("photo.jpg", "mask.png", preset="offline")
    >>> result.save("clean.jpg")
"""

__version__ = "0.1.0"

from .api import Result, build_pipeline, remove  # noqa: E402
from .config import PRESETS, PipelineConfig  # noqa: E402
from .detect import find_mask, select  # noqa: E402
from .errors import (  # noqa: E402
    ChecksumError,
    ClearfillError,
    ImageTooLargeError,
    InvalidConfigError,
    InvalidInputError,
    ModelNotAvailableError,
    OutputExistsError,
)

__all__ = [
    "PRESETS", "ChecksumError", "ClearfillError", "ImageTooLargeError", "InvalidConfigError", "InvalidInputError",
    "ModelNotAvailableError", "OutputExistsError", "PipelineConfig", "Result", "build_pipeline", "find_mask", "remove",
    "select",
]
