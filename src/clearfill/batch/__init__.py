"""Batch removal: many images, one machine (a process pool) or a Ray cluster.

Lossless and resumable: outputs are written atomically, ``resume`` skips items
whose output exists, one bad item is reported and never stops the others, and
each item's status goes to a JSONL report as soon as it is known.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .. import io
from ..api import resolve_config, settle
from . import storage
from .plan import Item, Plan, plan_detect, plan_folder, plan_manifest
from .safety import Ledger, check_outputs
from .work import Settings, Worker, already_done

__all__ = ["Item", "Plan", "Settings", "Summary", "Worker", "plan_detect", "plan_folder", "plan_manifest",
           "run_batch"]


@dataclass
class Summary:
    ok: int = 0
    skipped: int = 0
    errors: int = 0
    interrupted: bool = False

    @property
    def all_ok(self) -> bool:
        return self.errors == 0 and not self.interrupted


class _Reporter:
    """Appends one JSON line per item to the report and keeps the counts and progress bar."""

    def __init__(self, report: Path | None, total: int, progress: bool):
        self.handle = storage.open_for_append(Path(report), "the report") if report else None
        self.summary = Summary()
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, record: dict) -> None:
        status = record.get("status")
        if status == "ok":
            self.summary.ok += 1
        elif status == "skipped":
            self.summary.skipped += 1
        elif status == "error":
            self.summary.errors += 1
        record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S"))
        if self.handle:
            self.handle.write(json.dumps(record) + "\n")
        if self.bar is not None and "image" in record and status != "unmatched":
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.handle:
            self.handle.close()


def _settled(settings: Settings) -> Settings:
    """Every worker runs one remover, chosen here once ("auto" resolved; its weights, and the
    other stages' registry files, fetched once, before any worker starts)."""
    config, _ = settle(resolve_config(settings.preset, settings.overrides), device=settings.device)
    return replace(settings, overrides={**settings.overrides, "remove.method": config.remove.method})


def run_batch(plan: Plan, settings: Settings, *, engine: str = "local", workers: int = 1, resume: bool = False,
              overwrite: bool = False, report: Path | None = None, progress: bool = False,
              ray_address: str | None = None, gpus_per_worker: float = 0.0,
              on_result: Callable[[dict], None] | None = None) -> Summary:
    """Run every item of ``plan``. Refuses (before any work) a plan that would
    overwrite its inputs, write outside its output root, write one output twice, or
    replace existing files it did not write unless ``overwrite`` (see ``safety``)."""
    check_outputs(plan, overwrite=overwrite, resume=resume, report=report)
    settings = _settled(settings)
    ledger = Ledger(plan.output_root)
    with io.output_errors("the report", report):
        reporter = _Reporter(report, len(plan.items) + len(plan.images_without_mask), progress)
    try:
        for image in plan.images_without_mask:
            reporter({"image": image, "status": "error", "message": "no mask found for this image"})
        for mask in plan.masks_without_image:
            reporter({"mask": mask, "status": "unmatched", "message": "no image for this mask"})  # noted, not failed
        todo = []
        for item in plan.items:
            if resume and already_done(item):
                reporter({"image": item.image, "mask": item.mask, "output": item.output, "status": "skipped",
                          "message": "output exists (resume)"})
            else:
                storage.remove_stale_temporaries(item.output)
                todo.append(item)
        with io.output_errors("to the output folder", plan.output_root):  # before any work, not after it
            ledger.claim(todo)

        def handle(record: dict) -> None:
            reporter(record)
            if on_result:
                on_result(record)

        try:
            if engine == "local":
                from .local import run_local

                run_local(todo, settings, workers, handle)
            elif engine == "ray":
                from .ray_engine import run_ray

                run_ray(todo, settings, max(1, workers), handle, address=ray_address,
                        gpus_per_worker=gpus_per_worker, cpus=None if ray_address else max(1, workers))
            else:
                raise ValueError(f"unknown engine {engine!r}")
        except KeyboardInterrupt:
            reporter.summary.interrupted = True
        return reporter.summary
    finally:
        reporter.close()
