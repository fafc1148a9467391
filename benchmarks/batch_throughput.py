#!/usr/bin/env python3
"""Batch throughput: 64 images of 1024 px with the offline preset, local engine with
1 and 2 workers and the Ray engine with 2 actors, in one run.

    python benchmarks/batch_throughput.py [--images 64]

Uses the real 1024-px photos and masks of ../shared/bench (repeated to the count).
Prints images per second and the scaling efficiency (rate with 2 / (2 x rate with 1)).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from clearfill import batch

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "bench"


def stage_inputs(folder: Path, count: int) -> tuple[Path, Path]:
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    sources = sorted((BENCH / "images_1024").glob("*.png"))
    if not sources:
        raise SystemExit(f"no 1024-px bench images at {BENCH}")
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copy(source, images / f"{i:03d}-{source.name}")
        shutil.copy(BENCH / "masks_1024" / source.name, masks / f"{i:03d}-{source.name}")
    return images, masks


def timed(plan, engine: str, workers: int) -> float:
    start = time.perf_counter()
    summary = batch.run_batch(plan, batch.Settings(preset="offline"), engine=engine, workers=workers)
    elapsed = time.perf_counter() - start
    assert summary.errors == 0, summary
    return len(plan.items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        images, masks = stage_inputs(Path(folder), args.images)
        rates = {}
        for label, engine, workers in (("local x1", "local", 1), ("local x2", "local", 2), ("ray x2", "ray", 2)):
            plan = batch.plan_folder(images, masks, Path(folder) / label.replace(" ", "-"))
            rates[label] = timed(plan, engine, workers)
            print(f"{label:<9} {rates[label]:.3f} images/s", flush=True)
        for label in ("local x2", "ray x2"):
            print(f"scaling efficiency {label}: {rates[label] / (2 * rates['local x1']):.0%}")


if __name__ == "__main__":
    main()
