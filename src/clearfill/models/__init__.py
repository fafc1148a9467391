"""The model manager every model stage shares: the registry, the cache and safe loading.

A model is named by a registry name (``big-lama``) or by a path to a local file;
``locate`` turns either into a ``ModelFile``: a registry model is taken from a
ComfyUI install when one is configured and holds it (``models.comfyui``), else from
the cache, downloaded there when missing unless offline.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import InvalidInputError, ModelNotAvailableError
from . import comfyui, store
from .registry import REGISTRY, ModelEntry, entry

__all__ = ["REGISTRY", "ModelEntry", "ModelFile", "comfyui", "entry", "load_optional", "locate",
           "usable_without_download", "store"]

T = TypeVar("T")


@dataclass(frozen=True)
class ModelFile:
    path: Path
    entry: ModelEntry | None  # the registry entry this file is, if any

    @property
    def label(self) -> str:
        return self.entry.name if self.entry else self.path.name


def _entry_for_file(path: Path) -> ModelEntry | None:
    return next((e for e in REGISTRY.values() if e.filename == path.name), None)


def locate(name_or_path: str, *, download: bool = True) -> ModelFile:
    """A registry name or a local path -> the file to load (downloaded if needed and allowed)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_file():
            raise InvalidInputError(f"model path {path} is not a file")
        return ModelFile(path, _entry_for_file(path))
    if name_or_path in REGISTRY:
        model = REGISTRY[name_or_path]
        installed = _in_comfyui(model)
        if installed is not None:
            return ModelFile(installed, model)
        cached = store.path_of(model)
        if cached.is_file():
            return ModelFile(cached, model)
        if not download:
            raise ModelNotAvailableError(f"{model.name} is not downloaded "
                                         f"(run `clearfill models download {model.name}`)")
        return ModelFile(store.download(model.name), model)
    if path.suffix or "/" in name_or_path or "\\" in name_or_path:
        raise InvalidInputError(f"model file not found: {path}")
    return ModelFile(path, entry(name_or_path))  # raises: unknown model, with the known names


def _in_comfyui(model: ModelEntry) -> Path | None:
    install = comfyui.configured()
    return install.by_filename(model.filename) if install else None


def usable_without_download(name: str) -> tuple[bool, str]:
    """Whether ``name`` can be used now, and if not, why (for the "auto" choices)."""
    model = REGISTRY.get(name)
    if model is None:
        return False, f"unknown model {name}"
    if store.is_downloaded(model) or _in_comfyui(model) is not None:
        return True, ""
    if store.offline():
        return False, f"{name} weights not downloaded and offline mode is on"
    return False, f"{name} weights not downloaded"


def load_optional(load: Callable[[], T], *, what: str, setting: str, device: str, allow_cpu: bool,
                  fallback: bool, warn_on_cpu: bool = False) -> tuple[T | None, str]:
    """Load an optional model stage's model: (the model, "") or (None, why not).

    On a CPU the model is skipped unless ``allow_cpu`` (``setting`` names the switch);
    a model that cannot be loaded is skipped when ``fallback`` and an error otherwise
    (a user who names a model wants it, not a silent substitute)."""
    from ..errors import ClearfillError
    from .device import resolve_device

    try:
        if resolve_device(device) == "cpu":
            if not allow_cpu:
                return None, f"{what} not used on the CPU (slow; set {setting}=true)"
            if warn_on_cpu:
                print(f"clearfill: warning: running {what} on the CPU: this is slow", file=sys.stderr)
        return load(), ""
    except ImportError as exc:
        if not fallback:
            raise
        return None, f"{what} needs packages that are missing ({exc.name}; pip install 'clearfill[models]')"
    except ClearfillError as exc:
        if not fallback:
            raise
        return None, f"{what} unavailable: {exc}"
