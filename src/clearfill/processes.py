"""Helpers for the worker processes clearfill starts (batch workers, the server's
removal worker)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """A worker must never outlive the process that started it (it would go on
    writing outputs, or hold a GPU): on Linux the kernel kills it when the parent
    dies; everywhere a thread checks."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before we could ask
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="clearfill-parent-watch", daemon=True).start()


def lower_priority() -> None:
    """Run below the priority of what serves requests (nice 10; on Linux this is per
    thread when called from one, and threads started afterwards inherit it)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
