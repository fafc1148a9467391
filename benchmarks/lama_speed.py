#!/usr/bin/env python3
"""LaMa stage latency and peak memory on this CPU, against the plain spandrel and
TorchScript calls on the same model, in the same run.

    python benchmarks/lama_speed.py [--sizes 512 1024] [--runs 3] [--skip-12mp]

The full big-lama architecture at random weights (compute does not depend on the
weight values). Each measurement runs in its own process so peak RSS is its own.
Masks: "object", one 160x120-ish object (the usual removal), and "strokes", brush
strokes over the whole frame (nothing to crop). Prints median seconds, peak RSS
and the ratio clearfill / spandrel, and writes them to benchmarks/results/lama_speed.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_mask(kind: str, height: int, width: int) -> np.ndarray:
    import cv2

    mask = np.zeros((height, width), np.uint8)
    if kind == "object":
        cv2.ellipse(mask, (width // 2, height // 2), (width * 80 // 512, height * 60 // 512), 20, 0, 360, 1, -1)
    else:
        rng = np.random.default_rng(0)
        for _ in range(12):
            points = rng.integers(0, [width, height], size=(4, 2)).astype(np.int32)
            cv2.polylines(mask, [points], False, 1, thickness=max(8, width // 24))
    return mask.astype(bool)


def child(variant: str, size: int, mask_kind: str, runs: int, weights: str) -> None:
    import torch

    rng = np.random.default_rng(0)
    height, width = (3000, 4000) if size == 12 else (size, size)
    image = rng.random((height, width, 3), dtype=np.float32)
    hole = make_mask(mask_kind, height, width)
    if variant == "spandrel":
        from clearfill.models.loading import load_descriptor

        descriptor = load_descriptor(Path(weights))
        x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
        m = torch.from_numpy(hole.astype(np.float32))[None, None]

        def call():
            with torch.no_grad():
                descriptor(x, m)
    elif variant == "torchscript":
        scripted = torch.jit.load(weights.replace(".safetensors", ".pt"))
        x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
        m = torch.from_numpy(hole.astype(np.float32))[None, None]

        def call():
            with torch.no_grad():
                scripted(x, m)
    else:
        from clearfill import removers

        remover = removers.create("lama", {"model": weights}, device="cpu")

        def call():
            remover(image, hole)
    times = []
    for _ in range(runs + 1):  # the first call warms up allocators and kernels
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": statistics.median(times[1:]), "peak_mb": peak_mb}))


def make_weights(folder: Path) -> str:
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    model = LaMa(in_nc=4, out_nc=3).eval()
    path = folder / "lama.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with torch.no_grad():
        traced = torch.jit.trace(model, (torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)), check_trace=False)
    traced.save(str(folder / "lama.pt"))
    return str(path)


def measure(variant, size, mask_kind, runs, weights) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", variant, str(size), mask_kind, str(runs), weights],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-12mp", action="store_true")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, size, mask_kind, runs, weights = args.child
        child(variant, int(size), mask_kind, int(runs), weights)
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        weights = make_weights(Path(folder))
        print(f"{'size':>6} {'mask':<8} {'variant':<12} {'s (median)':>10} {'peak MB':>8} {'vs spandrel':>11}")
        for size in args.sizes:
            for mask_kind in ("object", "strokes"):
                base = None
                for variant in ("spandrel", "torchscript", "clearfill"):
                    figures = measure(variant, size, mask_kind, args.runs, weights)
                    base = base or figures["seconds"]
                    ratio = figures["seconds"] / base
                    results.append({"size": size, "mask": mask_kind, "variant": variant, **figures, "ratio": ratio})
                    print(f"{size:>6} {mask_kind:<8} {variant:<12} {figures['seconds']:>10.2f} "
                          f"{figures['peak_mb']:>8.0f} {ratio:>10.2f}x", flush=True)
        if not args.skip_12mp:
            figures = measure("clearfill", 12, "object", 1, weights)
            results.append({"size": "4000x3000", "mask": "object", "variant": "clearfill", **figures})
            print(f"12 MP (4000x3000) object, clearfill: {figures['seconds']:.2f} s, peak {figures['peak_mb']:.0f} MB "
                  f"(target < 4096 MB)")
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lama_speed.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
