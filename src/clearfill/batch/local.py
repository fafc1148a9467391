"""The local engine: a pool of processes, each loading the pipeline (and its models) once."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable

from .. import console
from .plan import Item
from .work import Settings, Worker

_worker: Worker | None = None


def _start_worker(settings: Settings) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle: finish the item in hand
    console.route_warnings()
    _worker = Worker(settings)


def _process(item: Item) -> dict:
    return _worker(item)


@contextlib.contextmanager
def _ctrl_c_as_flag():
    """While inside, Ctrl+C only sets the yielded event (checked between items), so
    no item is cut off between writing its output and reporting it."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_local(items: Iterable[Item], settings: Settings, workers: int, on_result: Callable[[dict], None]) -> None:
    """Process ``items`` with ``workers`` processes (1: in this process), calling
    ``on_result`` in this process as each finishes. On Ctrl+C, stops taking new items,
    lets the ones in flight finish (and reports them), then raises KeyboardInterrupt."""
    items = list(items)
    with _ctrl_c_as_flag() as stop:
        if workers <= 1:
            worker = Worker(settings)
            for item in items:
                if stop.is_set():
                    break
                on_result(worker(item))
        else:
            _run_pool(items, settings, workers, on_result, stop)
    if stop.is_set():
        raise KeyboardInterrupt


def _run_pool(items, settings, workers, on_result, stop: threading.Event) -> None:
    context = multiprocessing.get_context("spawn")  # fork would copy torch/numba thread state
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(settings,)) as pool:
        pending = iter(items)
        in_flight = set()
        while True:
            while not stop.is_set() and len(in_flight) < 2 * workers:
                item = next(pending, None)
                if item is None:
                    break
                in_flight.add(pool.submit(_process, item))
            if not in_flight:
                return
            done, in_flight = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                on_result(future.result())
