"""Removers: one module each, found and registered when this package is imported."""

import importlib
import pkgutil

from .base import REGISTRY, Choice, Remover, RemoverInfo, choose, create, model_of, register

__all__ = ["REGISTRY", "Choice", "Remover", "RemoverInfo", "choose", "create", "model_of", "register"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
