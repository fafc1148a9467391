"""MAT (Li et al. 2022, "Mask-Aware Transformer for Large Hole Image Inpainting").

Runs through the same spandrel inpainting path as LaMa; MAT's architecture lives
in ``spandrel_extra_arches``, which must be installed. Spandrel pads inputs to
MAT's square multiple of 512 itself.

Two things make spandrel's MAT differ from IOPaint's and from run to run, and both
are fixed here: its style latent ``z`` is drawn from numpy's global generator,
unseeded, when the model is built (IOPaint seeds 240 first), and its middle layer
applies dropout in training mode on every call. The latent is redrawn as IOPaint
draws it and each call seeds the dropout, so a fill is the same every time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.device import MAT_PRECISION
from ..models.loading import EXTRA_ARCHITECTURES_MISSING, install_extra_architectures
from .base import register
from .lama import ARCHITECTURES, ArchitectureSupport, LamaConfig, LamaRemover

IOPAINT_SEED = 240  # IOPaint seeds this before drawing MAT's latent


@dataclass(frozen=True)
class MatConfig(LamaConfig):
    model: str = "mat-places512"
    region_trigger: int = 1024  # MAT works on 512-px squares; regions keep its inputs small
    channels_last: bool = False  # never used for MAT: its fill changes in NHWC (up to 1.0 on random weights)


def prepare_mat(descriptor, device: str, dtype):
    """IOPaint's latent on the model's device and dtype, and a forward whose dropout is seeded."""
    import numpy as np
    import torch

    mat = descriptor.model
    latent = np.random.RandomState(IOPAINT_SEED).randn(1, mat.model.z_dim)  # IOPaint: seed, build, randn
    mat.z = torch.from_numpy(latent).to(device, dtype)
    mat.label = mat.label.to(device, dtype)
    kind = torch.device(device).type

    def forward(pixels, mask):
        with torch.random.fork_rng(devices=[torch.device(device)] if kind == "cuda" else [], device_type=kind):
            torch.manual_seed(IOPAINT_SEED)
            return descriptor(pixels, mask)

    return forward


ARCHITECTURES["MAT"] = ArchitectureSupport(MAT_PRECISION, channels_last=False, prepare=prepare_mat)


def _mat_usable(download: bool = True) -> tuple[bool, str]:
    from .. import models

    if not install_extra_architectures():
        return False, EXTRA_ARCHITECTURES_MISSING
    return models.usable_without_download("mat-places512")


@register("mat", config=MatConfig, needs_weights=True, auto_rank=25, usable=_mat_usable,
          summary="MAT (Places 512): transformer fill for large holes; needs spandrel-extra-arches and weights")
def mat(config: MatConfig, device: str = "auto") -> LamaRemover:
    if not install_extra_architectures():
        from ..errors import ModelNotAvailableError

        raise ModelNotAvailableError(f"MAT cannot run: {EXTRA_ARCHITECTURES_MISSING}")
    return LamaRemover(config, device=device)
