"""MAT (Li et al. 2022, "Mask-Aware Transformer for Large Hole Image Inpainting").

Runs through the same spandrel inpainting path as LaMa; MAT's architecture lives
in ``spandrel_extra_arches`` (non-commercial licence terms), which must be
installed. Spandrel pads inputs to MAT's square multiple of 512 itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import register
from .lama import LamaConfig, LamaRemover


@dataclass(frozen=True)
class MatConfig(LamaConfig):
    model: str = "mat-places512"
    region_trigger: int = 1024  # MAT works on 512-px squares; regions keep its inputs small


def _install_extra_architectures() -> tuple[bool, str]:
    try:
        import spandrel
        import spandrel_extra_arches
    except ImportError:
        return False, "spandrel-extra-arches is not installed (pip install spandrel-extra-arches)"
    spandrel_extra_arches.install(ignore_duplicates=True) if _accepts_ignore() else _install_once(spandrel,
                                                                                               spandrel_extra_arches)
    return True, ""


def _accepts_ignore() -> bool:
    import inspect

    import spandrel_extra_arches

    return "ignore_duplicates" in inspect.signature(spandrel_extra_arches.install).parameters


def _install_once(spandrel, extra) -> None:
    if not any(support.architecture.id == "MAT" for support in spandrel.MAIN_REGISTRY.architectures()):
        extra.install()


def _mat_usable() -> tuple[bool, str]:
    from .. import models

    ok, why = _install_extra_architectures()
    if not ok:
        return ok, why
    return models.usable_without_download("mat-places512")


@register("mat", config=MatConfig, needs_weights=True, auto_rank=25, usable=_mat_usable,
          summary="MAT (Places 512): transformer fill for large holes; needs spandrel-extra-arches and weights")
def mat(config: MatConfig, device: str = "auto") -> LamaRemover:
    ok, why = _install_extra_architectures()
    if not ok:
        from ..errors import ModelNotAvailableError

        raise ModelNotAvailableError(f"MAT cannot run: {why}")
    return LamaRemover(config, device=device)
