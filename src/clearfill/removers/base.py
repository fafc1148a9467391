"""The remover interface and the registry every remover module adds itself to.

A remover is a callable ``(image, hole, progress=None) -> filled image`` over the
pipeline's pixel convention (float32 RGB H x W x 3, bool hole H x W); it may
change only hole pixels (the remove stage enforces it anyway). A remover with
long inner loops calls ``progress(done, total)`` between them: that is where a
run reports how far it is, and where a cancelled run stops. Adding one is one new module
in this package that calls ``register``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Protocol

import numpy as np

from .. import options as opts
from ..errors import InvalidConfigError

Steps = Optional[Callable[[int, int], None]]  # progress(done, total); it may raise to stop the run


class Remover(Protocol):
    def __call__(self, image: np.ndarray, hole: np.ndarray, progress: Steps = None) -> np.ndarray: ...


@dataclass(frozen=True)
class RemoverInfo:
    name: str
    factory: Callable[..., Remover]  # factory(config, device=...) -> Remover
    config_type: type
    summary: str
    needs_weights: bool = False
    auto_rank: int = 0  # "auto" picks the usable remover with the highest rank
    # usable(download=...) -> (usable here?, why not); download=False never fetches weights to find out
    usable: Callable[..., tuple[bool, str]] = lambda **_: (True, "")


REGISTRY: dict[str, RemoverInfo] = {}


def register(name: str, *, config: type, summary: str, needs_weights: bool = False, auto_rank: int = 0,
             usable: Callable[..., tuple[bool, str]] | None = None):
    """Class or function decorator: make ``name`` selectable as ``remove.method``."""

    def decorate(factory):
        if name in REGISTRY:
            raise ValueError(f"remover {name!r} registered twice")
        REGISTRY[name] = RemoverInfo(name, factory, config, summary, needs_weights, auto_rank,
                                     usable or (lambda **_: (True, "")))
        return factory

    return decorate


@dataclass(frozen=True)
class Choice:
    """Which remover runs and why (said in the result and by the CLI)."""

    name: str
    reason: str

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def choose(method: str, *, download: bool = True) -> Choice:
    """The remover ``method`` names; for "auto" the best usable one (``download=False``:
    judged without fetching any weights, for listings)."""
    if method != "auto":
        if method not in REGISTRY:
            raise InvalidConfigError(f"unknown remover {method!r}; choose from auto, {', '.join(sorted(REGISTRY))}")
        return Choice(method, "requested")
    passed_over = []
    for info in sorted(REGISTRY.values(), key=lambda i: -i.auto_rank):
        ok, why_not = info.usable(download=download)
        if ok:
            reason = "best available"
            if passed_over:
                reason += "; " + "; ".join(passed_over)
            return Choice(info.name, reason)
        passed_over.append(f"{info.name} unavailable: {why_not}")
    raise InvalidConfigError("no remover is usable: " + "; ".join(passed_over))


def create(name: str, options: Mapping[str, Any], *, device: str = "auto") -> Remover:
    info = REGISTRY[name]
    config = opts.build(info.config_type, options, f"remove.{name}")
    return info.factory(config, device=device)


def model_of(name: str, options: Mapping[str, Any]) -> str | None:
    """The model file remover ``name`` loads with ``options`` (None for a weight-free one)."""
    info = REGISTRY[name]
    if not info.needs_weights:
        return None
    return getattr(opts.build(info.config_type, options, f"remove.{name}"), "model", None)
