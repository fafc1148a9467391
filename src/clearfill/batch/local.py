"""The local engine: a pool of processes, each loading the pipeline (and its models) once."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

from .. import console
from ..processes import die_with_parent
from .plan import Item
from .work import Settings, Worker

_worker: Worker | None = None
CRASHED = ("the worker process died while processing this item (a crash in native code, or killed for memory); "
           "the other items went on")


def _start_worker(settings: Settings, parent: int) -> None:
    global _worker
    die_with_parent(parent)
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


def _crash_report(item: Item) -> dict:
    return {"image": item.image, "mask": item.mask, "output": item.output, "status": "error", "message": CRASHED}


def _run_pool(items, settings, workers, on_result, stop: threading.Event, process=_process) -> None:
    """Items through a pool of worker processes. When a worker dies (a segfault, the
    OOM killer) the pool breaks and every item in flight is lost with it: those are
    run again one at a time in a new pool, so the one that kills its worker is
    reported as failed and every other item still gets done."""
    pending, suspects = deque(items), deque()
    context = multiprocessing.get_context("spawn")  # fork would copy torch/numba thread state
    while (pending or suspects) and not stop.is_set():
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(settings, os.getpid())) as pool:
            _drive(pool, pending, suspects, 2 * workers, on_result, stop, process)


def _drive(pool, pending: deque, suspects: deque, most_in_flight: int, on_result, stop, process) -> None:
    """Feed ``pool`` until the work is done, Ctrl+C, or the pool breaks."""
    in_flight: dict = {}
    while True:
        alone = bool(suspects)  # isolating: one suspect at a time, so a crash names its item
        while not stop.is_set() and len(in_flight) < (1 if alone else most_in_flight) and (suspects or pending):
            queue = suspects if alone else pending
            item = queue.popleft()
            try:
                in_flight[pool.submit(process, item)] = item
            except BrokenProcessPool:
                queue.appendleft(item)
                break
        if not in_flight:
            return
        done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
        lost = []
        for future in done:
            item = in_flight.pop(future)
            if isinstance(future.exception(), BrokenProcessPool):
                lost.append(item)
            else:
                on_result(future.result())
        if lost:
            lost += in_flight.values()  # every future of a broken pool fails with it
            if alone and len(lost) == 1:
                on_result(_crash_report(lost[0]))
            else:
                suspects.extend(lost)
            return
