#!/usr/bin/env python3
"""Selecting an object without painting it: IoU against hand-outlined objects, and
seconds per selection.

    python benchmarks/selection_quality.py [--write-masks] [--sam-latency]

The objects are outlined in ``benchmarks/selection/objects.json`` (polygons and
ellipses on the 512x512 photos of ../shared/bench); their masks are committed in
``benchmarks/selection/masks`` (``--write-masks`` renders them again from the
outlines). Each object is selected the way a user would point at it:

- box: the object's bounding box, 5% looser on every side;
- lasso: a loose outline, 10 px outside the object, simplified to a few dozen points;
- click: one positive click at the object's deepest inside point;
- box + 1 click: the box, then one corrective click where the first result is most
  wrong (positive inside a missed part, negative on a wrongly taken one).

Prints a table per method (mean and median IoU, share of objects with IoU >= 0.8,
median seconds) and the per-object IoU. ``--sam-latency`` also times SAM 2.1
Hiera-Tiny's architecture at random weights (no weights can be downloaded here:
its IoU would mean nothing, its speed does): the image encoder once, then a click.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "benchmarks" / "selection"
PHOTOS = REPO.parent / "shared" / "bench" / "images"


def outline_mask(entry: dict, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    if "polygon" in entry:
        cv2.fillPoly(mask, [np.asarray(entry["polygon"], np.int32)], 1)
    elif "ellipse" in entry:
        cx, cy, rx, ry = entry["ellipse"]
        cv2.ellipse(mask, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
    else:
        cx, cy, rx, ry, angle = entry["rotated_ellipse"]
        cv2.ellipse(mask, (cx, cy), (rx, ry), angle, 0, 360, 1, -1)
    return mask > 0


def mask_path(entry: dict) -> Path:
    return HERE / "masks" / f"{entry['photo']}--{entry['name'].replace(' ', '-')}.png"


def loose_box(truth: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(truth)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    pad_x, pad_y = round(0.05 * (x1 - x0)), round(0.05 * (y1 - y0))
    height, width = truth.shape
    x0, y0 = max(0, x0 - pad_x), max(0, y0 - pad_y)
    x1, y1 = min(width, x1 + pad_x), min(height, y1 + pad_y)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def loose_lasso(truth: np.ndarray) -> list[tuple[float, float]]:
    grown = cv2.dilate(truth.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 4.0, True)[:, 0]
    return [(float(x), float(y)) for x, y in outline]


def deepest_point(region: np.ndarray) -> tuple[float, float]:
    depth = cv2.distanceTransform(np.pad(region.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


def user_clicks(truth: np.ndarray, seed: int, count: int = 4) -> list[tuple[float, float]]:
    """Where users click an object: its centre (the middle of its pixels, moved onto the
    object when that falls outside it, as on a crescent), and ``count`` more anywhere in
    its middle part (at least 40% of its greatest depth inside), drawn at random."""
    ys, xs = np.nonzero(truth)
    cx, cy = xs.mean(), ys.mean()
    nearest = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    clicks = [(float(xs[nearest]), float(ys[nearest]))]
    depth = cv2.distanceTransform(np.pad(truth.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    my, mx = np.nonzero(depth >= 0.4 * depth.max())
    for index in np.random.default_rng(seed).choice(len(mx), size=count, replace=len(mx) < count):
        clicks.append((float(mx[index]), float(my[index])))
    return clicks


def correction(found: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool]:
    """The click a user would make next: on the largest missed part (positive) or
    the largest wrongly taken part (negative), whichever is bigger."""
    missed, extra = truth & ~found, found & ~truth
    wrong = missed if missed.sum() >= extra.sum() else extra
    count, labels, stats, _ = cv2.connectedComponentsWithStats(wrong.astype(np.uint8), connectivity=8)
    if count <= 1:
        return (*deepest_point(truth), True)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (*deepest_point(labels == largest), wrong is missed)


def iou(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found & truth).sum() / max(1, (found | truth).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-masks", action="store_true", help="render the masks from the outlines again")
    parser.add_argument("--sam-latency", action="store_true", help="time SAM 2.1 Hiera-Tiny at random weights")
    args = parser.parse_args()
    from clearfill.detect import as_selection
    from clearfill.detect.select import select

    objects = json.loads((HERE / "objects.json").read_text())["objects"]
    methods = {"box": [], "lasso": [], "click": [], "box + 1 click": [], "user clicks": []}
    seconds = {name: [] for name in methods}
    rows, too_big, user_shares = [], 0, []
    for number, entry in enumerate(objects):
        photo = np.asarray(Image.open(PHOTOS / f"{entry['photo']}.png").convert("RGB"), np.float32) / 255
        if args.write_masks:
            mask_path(entry).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(outline_mask(entry, photo.shape[:2]).astype(np.uint8) * 255).save(mask_path(entry))
        truth = np.asarray(Image.open(mask_path(entry))) > 127
        box = loose_box(truth)
        prompts = {"box": {"box": box}, "lasso": {"lasso": loose_lasso(truth)},
                   "click": {"points": [(*deepest_point(truth), True)]}}
        scores = {}
        for name, prompt in prompts.items():
            start = time.perf_counter()
            found = select(photo, as_selection(prompt))
            seconds[name].append(time.perf_counter() - start)
            scores[name] = iou(found, truth)
            if name == "box":
                first = found
        start = time.perf_counter()
        refined = select(photo, as_selection({"box": box, "points": [correction(first, truth)]}))
        seconds["box + 1 click"].append(time.perf_counter() - start)
        scores["box + 1 click"] = iou(refined, truth)
        user = []
        for x, y in user_clicks(truth, seed=number):
            start = time.perf_counter()
            found = select(photo, as_selection({"points": [(x, y, True)]}))
            seconds["user clicks"].append(time.perf_counter() - start)
            user.append(iou(found, truth))
            too_big += found.sum() > 2 * truth.sum()
            user_shares.append(found.mean())
        scores["user clicks"] = float(np.mean(user))
        for name, value in scores.items():
            methods[name].append(value)
        rows.append((f"{entry['photo']}: {entry['name']}", scores))

    print(f"GrabCut on {len(objects)} hand-outlined objects (512x512 photos, 2-core CPU)\n")
    print("| prompt | mean IoU | median IoU | IoU >= 0.8 | median s |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in methods.items():
        print(f"| {name} | {np.mean(values):.3f} | {np.median(values):.3f} | {np.mean(np.array(values) >= 0.8):.2f} "
              f"| {statistics.median(seconds[name]):.2f} |")
    print(f"\nuser clicks: {len(user_shares)} clicks; the selection is more than twice the object for {too_big} "
          f"of them; it marks {np.median(user_shares):.1%} of the photo (median), {max(user_shares):.1%} at most")
    print("\n| object | " + " | ".join(methods) + " |\n| --- |" + " --- |" * len(methods))
    for label, scores in rows:
        print(f"| {label} | " + " | ".join(f"{scores[name]:.2f}" for name in methods) + " |")
    if args.sam_latency:
        sam_latency(np.asarray(Image.open(PHOTOS / f"{objects[0]['photo']}.png").convert("RGB"), np.float32) / 255)


def sam_latency(photo: np.ndarray) -> None:
    import tempfile

    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from clearfill.detect import as_selection
    from clearfill.detect.sam import SamSelector

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        Sam2VideoModel(Sam2VideoConfig()).save_pretrained(folder)  # the published layout
        selector = SamSelector(folder)
        start = time.perf_counter()
        selector.select(photo, as_selection({"points": [(100, 100, True)]}))
        first = time.perf_counter() - start
        clicks = []
        for x in range(5):
            start = time.perf_counter()
            selector.select(photo, as_selection({"points": [(100 + 20 * x, 120, True)]}))
            clicks.append(time.perf_counter() - start)
    print(f"\nSAM 2.1 Hiera-Tiny architecture at random weights, CPU ({torch.get_num_threads()} threads): first "
          f"selection (image encoder + decoder) {first:.2f} s, "
          f"each further click {statistics.median(clicks) * 1000:.0f} "
          f"ms (median of 5; the embedding is cached), encoder runs: {selector.encoded}")


if __name__ == "__main__":
    main()
