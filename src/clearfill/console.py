"""How clearfill's command line and its worker processes speak: one line on stderr
per error or warning, in clearfill's own words and prefix."""

from __future__ import annotations

import contextlib
import sys
import warnings

from .errors import ClearfillWarning


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` (or an exception) on one line, cut at ``limit`` characters."""
    line = " ".join(str(text).split()) or (type(text).__name__ if isinstance(text, BaseException) else "")
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."


def say(kind: str, message: object) -> None:
    print(f"clearfill: {kind}: {one_line(message)}", file=sys.stderr)


def route_warnings(verbose: bool = False) -> None:
    """Show clearfill's own warnings as one line each; other libraries' warnings
    (Pillow, numba, torch deprecations) only with ``verbose``, also as one line.
    Process-wide: only for processes clearfill owns (its batch workers); elsewhere
    use ``routed_warnings``."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ClearfillWarning) or verbose:
            say("warning", message)

    warnings.showwarning = show
    warnings.simplefilter("default")


@contextlib.contextmanager
def routed_warnings(verbose: bool = False):
    """``route_warnings`` while inside; the caller's warning display and filters after."""
    with warnings.catch_warnings():
        route_warnings(verbose)
        yield
