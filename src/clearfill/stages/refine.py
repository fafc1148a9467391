"""Refine: polish the working crop with a generative inpainting model.

The model stage (FLUX.1 Fill via diffusers) is not part of this build yet; until
it is, the stage reports itself as skipped and the stitch uses the removed crop.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline import Stage, StageSkipped, State


@dataclass(frozen=True)
class RefineConfig:
    model: str | None = None  # a registry name, local folder or file; None: no refinement
    strength: float = 0.8  # 1.0 regenerates from noise; 0.8 polishes the removed fill
    steps: int = 20
    guidance: float = 30.0
    prompt: str = ""

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"refine.strength must be in (0, 1], got {self.strength}")
        if self.steps < 1:
            raise ValueError(f"refine.steps must be >= 1, got {self.steps}")


class RefineStage(Stage):
    name = "refine"

    def __init__(self, config: RefineConfig, device: str = "auto"):
        self.config = config

    def run(self, state: State) -> None:
        if self.config.model is None:
            raise StageSkipped("no refiner configured (refine.model is none)")
        raise StageSkipped(f"refiner {self.config.model!r} is not available in this build; stitching the removed fill")
