"""Weight-free image synthesis kernels (compiled with numba)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from ..errors import ClearfillWarning


def _private_cache_dir() -> Path | None:
    """A per-user folder under the temp dir for compiled kernels, if it can be made."""
    folder = Path(tempfile.gettempdir()) / f"clearfill-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def kernel(function):
    """``numba.njit(nogil=True)`` with the compiled code cached on disk where it can be.

    numba caches beside the source or in the user's cache folder and refuses
    ``cache=True`` outright when it can write neither (a read-only install run by a
    user without a home): then a folder under the temp dir is used, or no cache,
    with one warning, rather than failing to import."""
    from numba import njit
    from numba.core import config

    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
    fallback = _private_cache_dir()
    if fallback is not None and not config.CACHE_DIR:
        config.CACHE_DIR = str(fallback)
        _warn_once(f"compiled kernels are cached in {fallback} (the install folder and the home cache are not "
                   "writable)")
        return njit(cache=True, nogil=True)(function)
    _warn_once("compiled kernels cannot be cached on disk (no writable folder): they are compiled on each run")
    return njit(cache=False, nogil=True)(function)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, ClearfillWarning, stacklevel=3)
