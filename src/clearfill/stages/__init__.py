"""The pipeline's stages, one module each, in the order they run."""

from .crop import CropConfig, CropStage
from .mask_prep import MaskPrepConfig, MaskPrepStage
from .refine import RefineConfig, RefineStage
from .remove import RemoveConfig, RemoveStage
from .resize import ResizeConfig, ResizeStage
from .stitch import StitchConfig, StitchStage
from .unblend import UnblendStage

__all__ = [
    "CropConfig", "CropStage", "MaskPrepConfig", "MaskPrepStage", "RefineConfig", "RefineStage",
    "RemoveConfig", "RemoveStage", "ResizeConfig", "ResizeStage", "StitchConfig", "StitchStage",
    "UnblendStage",
]
