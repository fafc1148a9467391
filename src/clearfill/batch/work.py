"""Processing one batch item; the same code runs in every engine's workers."""

from __future__ import annotations

import io as stdio
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .. import io
from ..api import build_pipeline, remove, resolve_config
from ..errors import ClearfillError
from . import storage
from .plan import Item


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to build its pipeline once and run items."""

    preset: str = "reference"
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    device: str = "auto"
    resize_mask: bool = False
    max_pixels: int = io.DEFAULT_MAX_PIXELS
    detect: str | None = None  # find each image's mask ("text") instead of reading one


class Worker:
    """Holds one pipeline (models loaded once) and processes items with it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.config = resolve_config(settings.preset, settings.overrides)
        self.pipeline = build_pipeline(self.config, device=settings.device)

    def __call__(self, item: Item) -> dict:
        start = time.perf_counter()
        report = {"image": item.image, "mask": item.mask, "output": item.output}
        try:
            image = io.load_image(_source(item.image), max_pixels=self.settings.max_pixels)
            mask = _source(item.mask) if item.mask else None
            result = remove(image, mask, pipeline=self.pipeline, detect=None if mask else self.settings.detect,
                            seed=self.settings.seed, resize_mask=self.settings.resize_mask,
                            max_pixels=self.settings.max_pixels)
            encoded = io.encode_image(result.pixels, result.source, io.output_format(item.output))
            storage.write_atomic(item.output, encoded)
            report.update(status="ok", seed=result.seed, remover=_note(result, "remove"),
                          stages={r.name: round(r.seconds, 4) for r in result.stages if r.ran},
                          mask_area=round(float(result.hole.mean()), 5),
                          skipped=result.skipped)
        except ClearfillError as exc:
            report.update(status="error", message=str(exc))
        except Exception as exc:  # one bad item never stops the batch; keep what went wrong
            report.update(status="error", message=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=3))
        report["seconds"] = round(time.perf_counter() - start, 4)
        return report


def _source(location: str):
    """Local paths go to the reader as paths; other URIs are fetched as bytes first."""
    return location if storage.is_local(location) else stdio.BytesIO(storage.read_bytes(location))


def _note(result, stage: str) -> str:
    return next((r.note for r in result.stages if r.name == stage), "")


def already_done(item: Item) -> bool:
    """An output that exists is complete (outputs are only ever renamed into place)."""
    return storage.exists(item.output)
