"""The remove stage: fill the hole with the configured remover.

Removers live in ``clearfill.removers``, one module each; this stage only picks
one by name and guarantees that nothing outside the hole changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .. import removers
from ..imaging import composite
from ..pipeline import Stage, State


@dataclass(frozen=True)
class RemoveConfig:
    """method: a registered remover's name, or "auto" (the best one usable here).
    options: that remover's own parameters (checked against its config class)."""

    method: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)


class RemoveStage(Stage):
    name = "remove"
    needs = ("image", "hole")
    makes = ("removed",)

    def __init__(self, config: RemoveConfig, device: str = "auto"):
        self.choice = removers.choose(config.method)
        self.remover = removers.create(self.choice.name, config.options, device=device)

    def run(self, state: State) -> None:
        filled = self.remover(state.image, state.hole, progress=state.progress.steps(self.name))
        if filled.shape != state.image.shape:
            raise RuntimeError(f"remover {self.choice.name} returned shape {filled.shape}, "
                               f"expected {state.image.shape}")
        state.removed = composite(state.image, filled.astype(np.float32), state.hole.astype(np.float32))
        state.notes[self.name] = self.choice.describe()

    def picture(self, state: State) -> np.ndarray:
        return state.removed
