#!/usr/bin/env python3
"""Quality benchmark: run removers (or whole presets) over ../shared/bench and score them.

    python benchmarks/quality.py                       # telea, ns, exemplar on the dev split
    python benchmarks/quality.py -m exemplar -m ns --limit 5
    python benchmarks/quality.py -m preset:offline     # a whole pipeline preset
    python benchmarks/quality.py -m lama --set model=/path/to/big-lama.pt
    python benchmarks/quality.py -m pypatchmatch       # outside baseline, needs `pip install pypatchmatch`

Follows the bench's protocol: each method gets the image with the hole pixels
zeroed and the mask (255 = hole), writes OUT/NAME.png, and the bench's own
``score.py`` scores the folder. Prints one row per method with the median time
per image, and writes the table (markdown) and full scores (JSON) under --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

import clearfill
from clearfill import removers
from clearfill.imaging import composite, quantize, to_float

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BENCH = REPO.parent / "shared" / "bench"
COLUMNS = ("hole_psnr", "psnr", "ssim", "seam", "tex_w1", "sharpness", "outside_max_abs_diff")


def load_scorer(bench: Path):
    spec = importlib.util.spec_from_file_location("bench_score", bench / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_runner(method: str, options: dict):
    """A function (uint8 RGB with zeroed hole, bool hole) -> uint8 RGB."""
    if method.startswith("preset:"):
        preset = method.split(":", 1)[1]
        overrides = {key if "." in key else f"remove.{key}": value for key, value in options.items()}

        def run_preset(image, hole):
            return np.asarray(clearfill.remove(image, hole.astype(np.uint8) * 255, preset, **overrides).image)

        return run_preset
    if method == "pypatchmatch":  # an outside baseline (pip install pypatchmatch), not a clearfill remover
        from patchmatch import patch_match

        patch_match.set_random_seed(0)
        return lambda image, hole: patch_match.inpaint(image, hole.astype(np.uint8) * 255, patch_size=3)
    remover = removers.create(removers.choose(method).name, options)

    def run_remover(image, hole):
        pixels = to_float(image)
        filled = remover(pixels, hole)
        return quantize(composite(pixels, filled, hole.astype(np.float32)))

    return run_remover


def run_method(method, options, entries, bench, out_dir, res):
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = make_runner(method, options)
    seconds = []
    for entry in entries:
        image_key, mask_key = ("image_512", "mask") if res == 512 else ("image_1024", "mask_1024")
        image = np.asarray(Image.open(bench / entry[image_key]).convert("RGB")).copy()
        hole = np.asarray(Image.open(bench / entry[mask_key]).convert("L")) > 127
        image[hole] = 0  # the method must not see what was there
        start = time.perf_counter()
        output = runner(image, hole)
        seconds.append(time.perf_counter() - start)
        Image.fromarray(output).save(out_dir / f"{entry['name']}.png")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--method", action="append", help="remover name or preset:NAME (repeatable)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="PARAM=VALUE",
                        help="option for every method, e.g. --set patch_size=7")
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--split", default="dev", choices=["dev", "holdout", "all"])
    parser.add_argument("--res", type=int, default=512, choices=[512, 1024])
    parser.add_argument("--limit", type=int, help="only the first N images (quick checks)")
    parser.add_argument("--only", help="comma-separated image names")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quality")
    args = parser.parse_args()

    if not (args.bench / "score.py").exists():
        print(f"benchmark not found at {args.bench} (pass --bench)", file=sys.stderr)
        return 2
    scorer = load_scorer(args.bench)
    entries = [entry for entry, _, _ in scorer.select(scorer.load_manifest(args.bench), args.split, args.res)]
    if args.only:
        wanted = set(args.only.split(","))
        entries = [e for e in entries if e["name"] in wanted]
    entries = entries[: args.limit] if args.limit else entries
    options = dict(pair.split("=", 1) for pair in args.assignments)
    methods = args.method or ["telea", "ns", "exemplar"]

    rows, full = [], {}
    for method in methods:
        folder = args.out / method.replace(":", "-")
        seconds = run_method(method, options, entries, args.bench, folder, args.res)
        scores = scorer.score_dir(str(folder), str(args.bench), args.split, args.res, allow_missing=bool(
            args.limit or args.only))
        mean = scores["mean"]
        rows.append((method, mean, statistics.median(seconds)))
        full[method] = {"scores": scores, "seconds": seconds}
        print(f"{method}: done ({len(entries)} images, median {statistics.median(seconds):.2f} s)", file=sys.stderr)

    header = "| method | hole-PSNR | PSNR | SSIM | seam | tex-W1 | sharpness | outside max diff | s/img (median) |"
    lines = [header, "|" + " --- |" * 9]
    for method, mean, median in rows:
        lines.append(f"| {method} | {mean['hole_psnr']:.2f} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | "
                     f"{mean['seam']:.2f} | {mean['tex_w1']:.2f} | {mean['sharpness']:.2f} | "
                     f"{mean['outside_max_abs_diff']} | {median:.2f} |")
    table = "\n".join(lines)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    context = f"{args.split} split, {len(entries)} images at {args.res}px, options {options or 'default'}, {stamp}"
    print(context)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(context + "\n\n" + table + "\n")
    (args.out / "scores.json").write_text(json.dumps(full, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
