"""Where the server's removals run: a worker process of their own (the default), or a
thread of the server's process (``isolation="thread"``, for embedding and tests).

In its own process a removal shares no interpreter lock with the event loop, so
decoding a 16 MP image cannot delay ``/healthz``; a crash in native code or the OOM
killer takes the worker, not the server (the request gets a 500, the next one a new
worker); the worker runs at a lower CPU priority and keeps the model pool. It talks
to the server through two queues: uploads in; events, then the outcome, out (a run
may hand over its result early with ``deliver`` and go on making what can wait).
Cancelling sets a flag the worker's Progress checks; a worker still busy
``CANCEL_GRACE_S`` later (inside one long native call: GrabCut, a text detector
pass, an encoder) is killed, and the next removal starts a new one.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..pipeline import Progress
from ..processes import die_with_parent, lower_priority
from .requests import RequestError

_POLL_S = 0.1
CANCEL_GRACE_S = 1.0  # how long a cancelled removal may take to notice before its worker is killed


class WorkerCrashed(Exception):
    """The worker process died during a removal."""


class Bug(Exception):
    """A removal failed for a reason that is not the client's: the worker's traceback."""

    def __init__(self, text: str):
        super().__init__(text.strip().splitlines()[-1] if text.strip() else "bug")
        self.text = text


def _serve(tasks, results, cancel, parent: int, run: Callable, warm: Callable | None) -> None:
    """The worker process: one removal at a time, for as long as the server lives.
    ``run(task, progress, deliver)`` returns the outcome; ``deliver(result)`` hands the
    caller a result before that."""
    die_with_parent(parent)
    lower_priority()
    if warm is not None:
        try:
            warm()
        except Exception:  # a warm-up is an optimisation: the first removal pays what it did not do
            traceback.print_exc()
    while (task := tasks.get()) is not None:
        progress = Progress(lambda event: results.put(("event", event)), cancel)
        results.put(("event", {"type": "started"}))
        try:
            results.put(("done", run(task, progress, lambda result: results.put(("result", result)))))
        except RequestError as error:
            results.put(("refused", (error.status, error.message, error.code, error.headers)))
        except Exception:
            results.put(("bug", traceback.format_exc()))


class ProcessWorker:
    """Runs ``run(task, progress, deliver)`` in a worker process (started on first use,
    again after a crash). ``__call__`` blocks: call it from a thread, one at a time."""

    def __init__(self, run: Callable, warm: Callable | None = None):
        self._run, self._warm = run, warm  # warm(): run once in each new worker before its first task
        self._context = multiprocessing.get_context("spawn")  # fork would copy the server's threads and locks
        self._process = None
        self._tasks = self._results = self._cancel = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker now (the server does when it starts), so the first removal does
        not wait for a new process to import clearfill and its libraries."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()

    def _start(self) -> None:
        self._tasks, self._results = self._context.Queue(), self._context.Queue()
        self._cancel = self._context.Event()
        self._process = self._context.Process(target=_serve, name="clearfill-removal", daemon=True,
                                              args=(self._tasks, self._results, self._cancel, os.getpid(), self._run,
                                                    self._warm))
        self._process.start()

    def __call__(self, task, listener: Callable[[dict], None] | None = None,
                 cancel: threading.Event | None = None, on_result: Callable | None = None):
        """The run's outcome; its events go to ``listener`` and what it delivers early to
        ``on_result``, as they come."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            self._cancel.clear()
            self._tasks.put(task)
            cancelled_at = None
            while True:
                if cancel is not None and cancel.is_set():
                    self._cancel.set()
                    cancelled_at = cancelled_at or time.monotonic()
                    if time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                        self._stop_now()
                        raise RequestError(409, "the job was cancelled", "cancelled")
                try:
                    kind, payload = self._results.get(timeout=_POLL_S)
                except queue.Empty:
                    if not self._process.is_alive():
                        code = self._process.exitcode
                        self._process = None
                        raise WorkerCrashed(f"the removal worker died (exit code {code})") from None
                    continue
                if kind == "event":
                    if listener is not None:
                        listener(payload)
                elif kind == "result":
                    if on_result is not None:
                        on_result(payload)
                elif kind == "done":
                    return payload
                elif kind == "refused":
                    status, message, code, headers = payload
                    raise RequestError(status, message, code, headers)
                else:
                    raise Bug(payload)

    def _stop_now(self) -> None:
        """Kill the worker (its models with it); the next removal starts a fresh one."""
        self._process.kill()
        self._process.join(timeout=5)
        self._process = None

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.is_alive():
                self._tasks.put(None)
                self._process.join(timeout=5)
                if self._process.is_alive():  # busy (still warming up, say): stopped, and reaped
                    self._process.kill()
                    self._process.join(timeout=5)
            self._process = None
            if self._tasks is not None:  # their semaphores, else reported as leaked at exit
                for channel in (self._tasks, self._results):
                    channel.cancel_join_thread()  # nothing is read from them any more: never wait on them
                    channel.close()
            self._tasks = self._results = self._cancel = None
            gc.collect()  # their semaphores are unlinked when collected: now, not after the tracker's count


class ThreadWorker:
    """The same contract in a thread of the server's own process."""

    def __init__(self, run: Callable):
        self._run = run

    def start(self) -> None:
        pass

    def __call__(self, task, listener=None, cancel=None, on_result=None):
        if listener is not None:
            listener({"type": "started"})
        return self._run(task, Progress(listener, cancel), on_result or (lambda result: None))

    def close(self) -> None:
        pass


def removal_executor() -> ThreadPoolExecutor:
    """The one thread that waits on (or, for ThreadWorker, runs) removals, below the
    event loop's priority."""
    return ThreadPoolExecutor(1, thread_name_prefix="clearfill-removal", initializer=lower_priority)
