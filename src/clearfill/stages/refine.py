"""Refine: polish the working crop with a generative inpainting model (FLUX.1 Fill
by default), at strength 0.8 so it refines the remover's fill instead of
replacing it, and with the object-reappearance guard (``clearfill.guard``)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import guard
from ..options import check_range
from ..pipeline import Stage, StageSkipped, State


@dataclass(frozen=True)
class RefineConfig:
    model: str | None = None  # registry name, HF repo id, diffusers folder or FLUX Fill .safetensors; None: off
    base: str = "black-forest-labs/FLUX.1-Fill-dev"  # a single file's other parts: a diffusers folder or repo id
    strength: float = 0.8  # 1.0 regenerates from noise; 0.8 polishes the removed fill
    steps: int = 20
    guidance: float = 30.0
    prompt: str = ""
    negative_prompt: str = ""  # for SD/SDXL pipelines (FLUX Fill runs without one)
    candidates: int = 1  # > 1: generate this many (seeds seed, seed+1, ...) and keep the closest to the fill
    warn_above: float = 0.25  # guard score above which a single refinement is reported as suspicious
    on_cpu: bool = False  # a FLUX-size model on a CPU takes hours: off unless asked
    fallback: bool = True  # model unavailable: skip the stage (True) or fail (False)
    offload: str = "none"  # none, model (enable_model_cpu_offload) or sequential, for small GPUs
    precision: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"refine.strength must be in (0, 1], got {self.strength}")
        check_range("refine.steps", self.steps, 1, 1000)
        check_range("refine.candidates", self.candidates, 1, 16)
        check_range("refine.guidance", self.guidance, 0, 1000)


class RefineStage(Stage):
    name = "refine"
    needs = ("working", "working_mask", "seed")
    makes = ("refined", "guard", "guard_choice")

    def __init__(self, config: RefineConfig, device: str = "auto"):
        self.config = config
        self.refiner, self.unavailable = self._load(device)

    def _load(self, device: str):
        cfg = self.config
        if cfg.model is None:
            return None, "no refiner configured (refine.model is none)"
        from ..models import load_optional

        def load():
            from ..models.device import resolve_device
            from ..models.pool import POOL
            from ..models.refiner import Refiner

            where = resolve_device(device)
            return POOL.get(("refiner", cfg.model, cfg.base, where, cfg.precision, cfg.offload),
                            lambda: Refiner(cfg.model, device=where, precision=cfg.precision, offload=cfg.offload,
                                            base=cfg.base))

        return load_optional(load, what=f"refiner {cfg.model}", setting="refine.on_cpu", device=device,
                             allow_cpu=cfg.on_cpu, fallback=cfg.fallback, warn_on_cpu=True)

    def run(self, state: State) -> None:
        if self.refiner is None:
            raise StageSkipped(self.unavailable)
        cfg = self.config
        scored = []
        for k in range(cfg.candidates):
            seed = state.seed + k
            candidate = self.refiner(state.working, state.working_mask, seed=seed, strength=cfg.strength,
                                     steps=cfg.steps, guidance=cfg.guidance, prompt=cfg.prompt,
                                     negative_prompt=cfg.negative_prompt, progress=state.progress.steps(self.name))
            scored.append((guard.score(candidate, state.working, state.working_mask, seed), candidate))
        best, state.refined = min(scored, key=lambda pair: pair[0].total)
        state.guard = [score for score, _ in scored]
        state.guard_choice = best.seed
        note = f"{self.refiner.label}, strength {cfg.strength}, {cfg.steps} steps, seed {best.seed}"
        if cfg.candidates > 1:
            note += f", best of {cfg.candidates} (guard {best.total:.3f})"
        elif best.total > cfg.warn_above:
            note += f"; warning: departs from the removed fill (guard {best.total:.3f} > {cfg.warn_above})"
        state.notes[self.name] = note

    def picture(self, state: State):
        return state.refined
