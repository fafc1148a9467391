"""The one-call library API that the CLI, the server and the batch runner wrap."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from . import io
from .config import REFERENCE_SEED, PipelineConfig
from .config import preset as preset_config
from .errors import ClearfillError, InvalidConfigError, InvalidInputError
from .pipeline import Pipeline, Progress, StageRecord, State
from .stages import CropStage, MaskPrepStage, RefineStage, RemoveStage, ResizeStage, StitchStage, UnblendStage


def settle(config: PipelineConfig, *, device: str = "auto") -> tuple[PipelineConfig, str]:
    """``config`` as a server or a batch runs it many times: "auto" resolved to one remover
    now, and the registry files its stages will load fetched now (where they can be), so
    that no later run goes to the network. Returns it and the remover chosen, in words."""
    from . import models, removers
    from .models.device import resolve_device
    from .stages import RemoveConfig

    choice = removers.choose(config.remove.method)  # the one time "auto" may download to decide
    config = replace(config, remove=RemoveConfig(choice.name, config.remove.options))
    wanted = [removers.model_of(choice.name, config.remove.options)]
    runs_here = resolve_device(device) != "cpu"
    if config.resize.upscaler and (runs_here or config.resize.upscaler_on_cpu):
        wanted.append(config.resize.upscaler)
    for model in filter(None, wanted):
        with contextlib.suppress(ClearfillError):  # missing for good: the stage says so when it runs
            models.locate(model)
    if config.refine.model and (runs_here or config.refine.on_cpu):
        from .models.refiner import prefetch

        with contextlib.suppress(ClearfillError):
            prefetch(config.refine.model)
    return config, choice.describe()


def build_pipeline(config: PipelineConfig, *, device: str = "auto") -> Pipeline:
    """The standard stage list for ``config``. Model stages take their networks from
    the process-wide pool (``models.pool``): the first pipeline that names a model
    loads it, later ones (any preset, any per-call settings) cost microseconds."""
    return Pipeline([
        UnblendStage(),
        MaskPrepStage(config.mask),
        RemoveStage(config.remove, device=device),
        CropStage(config.crop),
        ResizeStage(config.resize, device=device),
        RefineStage(config.refine, device=device),
        StitchStage(config.stitch),
    ], config=config)


@dataclass
class Result:
    """The outcome of ``remove``: the image, and how it was made."""

    pixels: np.ndarray  # float32 RGB H x W x 3, the pipeline's output
    source: io.LoadedImage  # the input, with what is needed to write the output like it
    stages: list[StageRecord]
    seed: int
    config: PipelineConfig | None  # the config that ran (None for a hand-made pipeline without one)
    hole: np.ndarray  # bool H x W: the prepared hole (empty when the mask marked nothing)
    unblended: np.ndarray  # bool H x W: pixels recovered by undoing a semi-transparent mark (not filled)
    stage_pictures: dict[str, np.ndarray] = field(default_factory=dict)  # stage name -> float RGB
    guard: list = field(default_factory=list)  # refinement candidates' guard scores (clearfill.guard)
    guard_choice: int | None = None  # the seed of the refinement kept
    _pictures_later: Callable[[], dict[str, np.ndarray]] | None = field(default=None, repr=False, compare=False)

    def make_stage_pictures(self) -> dict[str, np.ndarray]:
        """For ``keep_stages="later"``: make ``stage_pictures`` now (once), then let go of
        the run's intermediate images."""
        if self._pictures_later is not None:
            self.stage_pictures, self._pictures_later = self._pictures_later(), None
        return self.stage_pictures

    @property
    def image(self) -> Image.Image:
        """The output as a PIL image in the input's mode (alpha and gray kept)."""
        return io.to_pil(self.pixels, self.source)

    @property
    def timings(self) -> dict[str, float]:
        return {record.name: record.seconds for record in self.stages}

    @property
    def skipped(self) -> dict[str, str]:
        """Stages that did not run, with the reason."""
        return {record.name: record.note for record in self.stages if not record.ran}

    def ran(self, stage: str) -> bool:
        return any(record.name == stage and record.ran for record in self.stages)

    def note(self, stage: str) -> str:
        """What ``stage`` did, or why it was skipped ("" for a stage not in the pipeline)."""
        return next((record.note for record in self.stages if record.name == stage), "")

    @property
    def changed(self) -> np.ndarray:
        """bool H x W: pixels that differ from the input."""
        return np.any(self.pixels != self.source.rgb, axis=2)

    def save(self, path: str | os.PathLike, *, quality: int = io.JPEG_QUALITY) -> Path:
        """Write atomically, in the format the extension names, keeping the input's
        mode, depth, alpha, ICC profile and EXIF where the format allows."""
        return io.save_image(path, self.pixels, self.source, quality=quality)

    def summary(self) -> list[str]:
        lines = []
        for record in self.stages:
            state = f"{record.seconds:6.2f}s" if record.ran else "skipped"
            lines.append(f"{record.name:<7} {state:>8}  {record.note}")
        return lines


def resolve_config(preset: str | PipelineConfig, overrides: Mapping[str, Any]) -> PipelineConfig:
    base = preset if isinstance(preset, PipelineConfig) else preset_config(preset)
    return base.with_overrides(overrides) if overrides else base


def remove(
    image: io.ImageSource | io.LoadedImage,
    mask: io.ImageSource | None = None,
    preset: str | PipelineConfig | None = None,
    *,
    seed: int | None = None,
    device: str = "auto",
    keep_stages: bool | str = False,
    stage_picture_side: int | None = None,
    resize_mask: bool = False,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    pipeline: Pipeline | None = None,
    progress: Progress | None = None,
    detect: Any = None,
    select: Any = None,
    **overrides: Any,
) -> Result:
    """Remove what ``mask`` marks from ``image`` and fill the hole.

    image, mask: paths, open files, PIL images or arrays; the mask's white (255) marks
                 what to remove (see ``io.load_mask`` for alpha and colour masks).
    detect:      instead of a mask, find what to remove: "text" (captions, credits,
                 date stamps, watermarks; see ``clearfill.detect``), or what
                 ``detect.find`` found already. A semi-transparent mark among it
                 is undone where the photo under it can be recovered (the
                 "unblend" stage), the rest is filled.
    select:      or point at it: {"box": (x, y, w, h), "lasso": [(x, y), ...],
                 "points": [(x, y, positive), ...]} (GrabCut; ``clearfill.select``).
    preset:      "reference" (the default), "fast", "offline", or a ``PipelineConfig``.
    overrides:   single parameters, ``**{"crop.padding": 32}`` or ``crop={"padding": 32}``.
    seed:        fixes every random choice (default: the reference workflow's seed).
    keep_stages: keep each stage's picture in ``Result.stage_pictures`` (at most
                 ``stage_picture_side`` pixels long when given: previews); "later":
                 made when ``Result.make_stage_pictures()`` is called, so the output
                 can be handed over first.
    pipeline:    a pipeline built earlier (``build_pipeline``); it runs with its own
                 config, so ``preset`` and ``overrides`` must then be left out.
    max_pixels:  refuse larger images and masks before decoding; None lifts the limit.
    progress:    receives stage, step and tile events and can cancel the run (``pipeline.Progress``).

    Raises InvalidInputError for unusable inputs (unreadable, size mismatch, a mask
    covering everything) and InvalidConfigError for unknown presets or parameters.
    An empty mask returns the image unchanged.
    """
    if pipeline is not None:
        if preset is not None or overrides:
            raise InvalidConfigError("pass either a pipeline or a preset and overrides: a pipeline runs with the "
                                     "config it was built from")
        config = pipeline.config
    else:
        config = resolve_config("reference" if preset is None else preset, overrides)
    if keep_stages not in (True, False, "later"):
        raise InvalidConfigError(f"keep_stages is True, False or 'later', not {keep_stages!r}")
    source = image if isinstance(image, io.LoadedImage) else io.load_image(image, max_pixels=max_pixels)
    if sum(given is not None for given in (mask, detect, select)) != 1:
        raise InvalidInputError("give one of a mask, detect= (what to find on the image) or select= (what to pick)")
    overlay = None
    if detect is not None:
        from .detect import TextFinding, find

        finding = detect if isinstance(detect, TextFinding) else find(source, detect)
        mask_values, overlay = finding.mask.astype(np.float32), finding.overlay
    elif select is not None:
        from .detect import as_selection, select_with

        mask_values = select_with(source.rgb, as_selection(select)).astype(np.float32)
    else:
        mask_values = io.load_mask(mask, source.size, resize_mask=resize_mask, max_pixels=max_pixels)
    state = State(image=source.rgb, mask=mask_values, seed=REFERENCE_SEED if seed is None else seed,
                  overlay=overlay, progress=progress or Progress())
    pipeline = pipeline or build_pipeline(config, device=device)
    later = keep_stages == "later"
    run = pipeline.run(state, keep_pictures=bool(keep_stages) and not later, picture_side=stage_picture_side)
    return Result(
        pixels=run.output,
        source=source,
        stages=run.records,
        seed=state.seed,
        config=config,
        hole=state.hole if state.hole is not None else np.zeros(mask_values.shape, dtype=bool),
        unblended=state.unblended if state.unblended is not None else np.zeros(mask_values.shape, dtype=bool),
        stage_pictures=run.pictures,
        guard=state.guard,
        guard_choice=state.guard_choice,
        _pictures_later=functools.partial(pipeline.pictures, run, stage_picture_side) if later else None,
    )
