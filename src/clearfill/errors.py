"""Typed errors of the library.

The library raises these; only the CLI turns them into exit codes and only the
server turns them into HTTP statuses. Every message is one line that names the
problem and, where there is one, what to do about it.
"""


class ClearfillError(Exception):
    """Base class of every error clearfill raises on purpose.

    ``setting`` names the library parameter that would change the outcome (say
    "max_pixels"), so the CLI and the server can add their own hint (a flag, a
    form field) to a message that itself names neither.
    """

    def __init__(self, message: str, *, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class ClearfillWarning(UserWarning):
    """Something worth telling the user that did not stop the work (corrupt EXIF
    dropped, a cache that could not be written)."""


class InvalidInputError(ClearfillError, ValueError):
    """An image or mask that cannot be used: missing, unreadable, wrong size, empty."""


class ImageTooLargeError(InvalidInputError):
    """An image over the configured pixel limit (a possible decompression bomb)."""


class InvalidConfigError(ClearfillError, ValueError):
    """An unknown preset, stage, parameter, or a value of the wrong type."""


class ModelNotAvailableError(ClearfillError):
    """A model's weights are not present and cannot be fetched (offline, no network)."""


class ChecksumError(ClearfillError):
    """A downloaded or local model file does not match its published checksum."""


class OutputExistsError(ClearfillError):
    """The output path exists (or is the input) and overwriting was not allowed."""


class OutputError(ClearfillError):
    """A destination that cannot be written: a folder in the way, no permission, a full disk."""


class Cancelled(ClearfillError):
    """The run was cancelled (between stages, refiner steps or SR tiles)."""


class UnsafeModelError(ClearfillError):
    """A model file that would run code when loaded (a crafted pickle, untrusted TorchScript)."""


class ModelLoadError(ClearfillError):
    """A model file that is readable but is not a model clearfill knows how to run."""
