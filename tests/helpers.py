"""Shared test helpers (pictures and masks made in the test, no files from elsewhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED = SHARED / "seed-example"
EXAMPLE = REPO / "examples" / "coffee"


def photo_like(rng, height: int, width: int) -> np.ndarray:
    """A smooth-plus-noise uint8 RGB picture: structure for the fills to continue."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        0.5 + 0.4 * np.sin(x / 17.0), 0.5 + 0.4 * np.cos(y / 23.0), 0.5 + 0.3 * np.sin((x + y) / 31.0),
    ], axis=2)
    noisy = base + rng.normal(0, 0.03, base.shape)
    return (np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def disk_mask(height: int, width: int, cx: int, cy: int, radius: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (((x - cx) ** 2 + (y - cy) ** 2) <= radius ** 2).astype(np.uint8) * 255


def process_or_die(item):
    """A batch worker's task that kills its own process for items named *crash* (a
    segfault or the OOM killer, as far as the pool can tell), else does the real work."""
    import os

    from clearfill.batch import local

    if "crash" in Path(item.image).name:
        os._exit(139)
    return local._process(item)


def busy_in_native_code(seconds, progress, deliver=None):
    """A removal that never reports progress (one long native call): only killing its
    worker stops it early. Module-level, so a spawned worker process can import it."""
    import time

    time.sleep(seconds)
    return "finished"


def leave_a_mark(path):
    """A worker's warm-up for the tests: proves it ran, and when."""
    from pathlib import Path

    Path(path).write_text("warm")
