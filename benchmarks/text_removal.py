#!/usr/bin/env python3
"""Automatic text removal on the text bench's dev split, beside its baselines, in one run.

    python benchmarks/text_removal.py [--bench /tmp/textbench-dev] [--masks-only]

Builds the split with ../shared/bench/text/make_text_bench.py when it is not there,
then writes, per method, OUT/<method>/masks and OUT/<method>/clean and scores them
with ../shared/bench/text/score_text.py:

- no-op: the output is the input;
- detector boxes: PP-OCRv4's detector with RapidOCR's own post-processing, the boxes
  filled as polygons (the bench README's baseline; needs rapidocr-onnxruntime's
  dependencies, skipped without them);
- ground truth + offline: the bench's own mask grown 2 px, filled by the offline preset;
- clearfill: ``detect.find(image, "text")`` (the mask scored) and ``remove`` with that
  finding and the offline preset (a semi-transparent mark is undone, the rest filled).

Prints each method's table and the seconds per image, then how much of the split's
text-free photos (its clean photos) clearfill would remove, with and without the
recognizer's reading (``TextConfig.read``): the false alarms a batch over a folder
of mostly text-free photos meets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TEXT_BENCH = REPO.parent / "shared" / "bench" / "text"


def build(bench: Path) -> None:
    if (bench / "manifest.json").exists():
        return
    subprocess.run([sys.executable, str(TEXT_BENCH / "make_text_bench.py"), "--photos", str(TEXT_BENCH.parent),
                    "--split", "dev", "--fonts", "dejavu", "--out", str(bench)], check=True)


def save_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask * 255).astype(np.uint8)).save(path)


def detector_boxes(image: np.ndarray):
    """The bench README's baseline: RapidOCR's detection boxes, filled."""
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    engine = detector_boxes.__dict__.setdefault("engine", RapidOCR())
    result, _ = engine(image[..., ::-1], use_det=True, use_cls=False, use_rec=False)
    mask = np.zeros(image.shape[:2], np.uint8)
    for box in result or []:
        cv2.fillPoly(mask, [np.asarray(box, np.int32)], 255)
    return mask > 0


def run_method(name: str, cases: list[dict], bench: Path, out: Path, masks_only: bool) -> list[float]:
    import cv2

    import clearfill
    from clearfill.detect import find

    seconds = []
    for case in cases:
        image_path = bench / "images" / f"{case['name']}.png"
        image = np.asarray(Image.open(image_path).convert("RGB"))
        start = time.perf_counter()
        if name == "no-op":
            Image.fromarray(image).save(_clean(out, case))
            seconds.append(time.perf_counter() - start)
            continue
        if name == "detector boxes":
            save_mask(out / "masks" / f"{case['name']}.png", detector_boxes(image))
            seconds.append(time.perf_counter() - start)
            continue
        if name == "ground truth + offline":
            truth = np.asarray(Image.open(bench / "masks" / f"{case['name']}.png")) > 127
            mask = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) * 255
            if not masks_only:
                clearfill.remove(image, mask, "offline", **{"mask.grow_pixels": 0.0}).save(_clean(out, case))
            seconds.append(time.perf_counter() - start)
            continue
        finding = find(image, "text")
        save_mask(out / "masks" / f"{case['name']}.png", finding.mask)
        if not masks_only:
            clearfill.remove(image, detect=finding, preset="offline",
                             **{"mask.grow_pixels": 0.0}).save(_clean(out, case))
        seconds.append(time.perf_counter() - start)
    return seconds


def false_alarms(bench: Path) -> None:
    """Text found on the bench's clean photos, which hold none: per setting, the photos with
    any mask and the share of all their pixels masked."""
    from clearfill.detect.text import TextConfig, detect_text

    photos = sorted((bench / "clean").glob("*.png"))
    print(f"## text-free photos ({len(photos)}): found where there is no text")
    print("| setting | photos with a mask | masked share | largest |\n| --- | --- | --- | --- |")
    for setting, config in (("clearfill", TextConfig()), ("clearfill, nothing read", TextConfig(read=False))):
        shares = [detect_text(np.asarray(Image.open(photo).convert("RGB"), np.float32) / 255, config).mask.mean()
                  for photo in photos]
        print(f"| {setting} | {sum(share > 0 for share in shares)} | {np.mean(shares):.5f} | {max(shares):.4f} |")
    print()


def _clean(out: Path, case: dict) -> Path:
    path = out / "clean" / f"{case['name']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=Path("/tmp/textbench-dev"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/textbench-runs"))
    parser.add_argument("--masks-only", action="store_true", help="find masks, skip the fills (fast)")
    parser.add_argument("--styles", help="only these styles, comma-separated (a quick look; the table uses all)")
    parser.add_argument("--methods", default="no-op,detector boxes,ground truth + offline,clearfill")
    args = parser.parse_args()
    build(args.bench)
    cases = json.loads((args.bench / "manifest.json").read_text())["cases"]
    if args.styles:
        cases = [case for case in cases if case["style"] in args.styles.split(",")]
    for name in args.methods.split(","):
        out = args.out / name.replace(" ", "-").replace("+", "plus")
        try:
            seconds = run_method(name, cases, args.bench, out, args.masks_only)
        except ImportError as exc:
            print(f"## {name}: skipped ({exc})\n")
            continue
        print(f"## {name}: median {statistics.median(seconds):.2f} s per image")
        subprocess.run([sys.executable, str(TEXT_BENCH / "score_text.py"), str(out), "--bench", str(args.bench)],
                       check=True)
        print()
    if "clearfill" in args.methods.split(","):
        false_alarms(args.bench)


if __name__ == "__main__":
    main()
