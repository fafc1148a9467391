"""The process-wide pool of loaded models.

A loaded model is keyed by what makes it differ from another: its kind, the file
or repo it came from, the device and the precision (a refiner adds its base and
offload mode). Everything else a stage is given (padding, steps, tile size, ...)
is a per-call setting, so presets and option sets that name the same model share
one copy; a pipeline built around pooled models costs microseconds. A model is
loaded once, by one thread, however many ask for it at the same time; the least
recently used are let go beyond ``CLEARFILL_MODEL_POOL_SIZE`` (default 6).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")


class ModelPool:
    def __init__(self, capacity: int | None = None):
        self.capacity = capacity if capacity is not None else int(os.environ.get("CLEARFILL_MODEL_POOL_SIZE", "6"))
        self._loaded: OrderedDict[Hashable, Any] = OrderedDict()
        self._loading: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The model under ``key``, loading it with ``load()`` the first time."""
        with self._guard:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one loader per key; the others wait for its result
            with self._guard:
                if key in self._loaded:
                    return self._loaded[key]
            model = load()
            with self._guard:
                self._loaded[key] = model
                self._loading.pop(key, None)
                while len(self._loaded) > max(1, self.capacity):
                    self._loaded.popitem(last=False)
            return model

    def keys(self) -> list:
        with self._guard:
            return list(self._loaded)

    def clear(self) -> None:
        with self._guard:
            self._loaded.clear()


POOL = ModelPool()
