#!/usr/bin/env python3
"""Exemplar remover cost against image size: a small hole in a 1-MP and in a 12-MP
photo should cost about the same (the fill works on a capped region around the hole).

    python benchmarks/exemplar_scaling.py

Prints seconds per call (median of 3) and the 12-MP / 1-MP ratio, measured in the
same run. Uses the bundled example photo, tiled up to each size.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clearfill import removers
from clearfill.imaging import to_float

REPO = Path(__file__).resolve().parents[1]


def photo(width: int, height: int) -> np.ndarray:
    tile = to_float(np.asarray(Image.open(REPO / "examples" / "coffee" / "coffee.png").convert("RGB")))
    reps = (height // tile.shape[0] + 1, width // tile.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:height, :width])


def seconds(remover, image, hole, runs=3):
    """Median of ``runs`` calls (the median also drops a first call's kernel compilation)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        remover(image, hole)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    remover = removers.create("exemplar", {})
    results = {}
    for label, (width, height) in {"1 MP": (1152, 864), "12 MP": (4000, 3000)}.items():
        image = photo(width, height)
        hole = np.zeros((height, width), bool)
        cy, cx = height // 2, width // 2
        hole[cy - 60:cy + 60, cx - 90:cx + 90] = True  # the same 180 x 120 object in both
        results[label] = seconds(remover, image, hole)
        print(f"{label:>6}: {results[label]:.2f} s")
    print(f"ratio 12 MP / 1 MP: {results['12 MP'] / results['1 MP']:.2f}")


if __name__ == "__main__":
    main()
