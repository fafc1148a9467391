#!/usr/bin/env python3
"""The generative half on this CPU, at random weights:

1. upscale: the reference's SR architecture (MoSR 2x, spandrel's default size) on a
   640x512 crop, untiled and tiled (256-px tiles), each in its own process for
   its own peak RSS;
2. refine: the refine stage's own overhead (everything but the diffusers pipeline
   call: conversions, guard) as a share of the stage's time, with a tiny FLUX.1 Fill
   whose VAE has FLUX's real 8x scale, at the reference working size 1088x896.
   A tiny transformer makes the pipeline call short, so the share is an upper
   bound: with the real 12 B transformer it is far smaller.

    python benchmarks/generative_cpu.py [refine|upscale]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def upscale_child(weights: str, tile: int) -> None:
    from clearfill.models.upscaler import Upscaler

    image = np.random.default_rng(0).random((512, 640, 3), dtype=np.float32)
    upscaler = Upscaler(weights, device="cpu", tile=tile, overlap=32)
    start = time.perf_counter()
    out = upscaler(image)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "shape": list(out.shape)}))


def measure_upscale(folder: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.MoSR import MoSR

    torch.manual_seed(0)
    model = MoSR(upscale=2)
    weights = folder / "mosr.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    for label, tile in (("untiled", 4096), ("tiled 256", 256)):
        done = subprocess.run([sys.executable, __file__, "--upscale-child", str(weights), str(tile)],
                              capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"upscale MoSR 2x ({params:.1f} M params) 640x512 -> {figures['shape'][1]}x{figures['shape'][0]}, "
              f"{label:<9}: {figures['seconds']:6.1f} s, peak RSS {figures['peak_mb']:.0f} MB", flush=True)


def measure_refine(folder: Path) -> None:
    from tiny_flux import build_tiny_flux_fill

    from clearfill.models.refiner import Refiner
    from clearfill.pipeline import CropRecord, State
    from clearfill.stages.refine import RefineConfig, RefineStage

    path = build_tiny_flux_fill(folder / "flux", vae_levels=4)
    stage = RefineStage(RefineConfig(model=str(path), on_cpu=True, steps=20, strength=0.8), device="cpu")
    refiner: Refiner = stage.refiner
    inside = []
    call = refiner.pipeline.__call__

    def timed_call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - start)

    refiner.pipeline.__class__.__call__ = lambda self, *a, **k: timed_call(*a, **k)
    rng = np.random.default_rng(0)
    working = rng.random((896, 1088, 3), dtype=np.float32)
    mask = np.zeros((896, 1088), np.float32)
    mask[200:700, 300:800] = 1
    state = State(image=working, mask=mask, seed=1)
    state.working, state.working_mask = working, mask
    state.crop = CropRecord((0, 0, 1088, 896), working, mask > 0, mask, mask)
    stage.run(state)  # warm-up: caches the prompt embeddings
    inside.clear()
    start = time.perf_counter()
    stage.run(state)
    total = time.perf_counter() - start
    overhead = total - inside[-1]
    print(f"refine stage 1088x896, tiny FLUX Fill (8x VAE), 20 steps at 0.8: stage {total:.2f} s, "
          f"pipeline call {inside[-1]:.2f} s, overhead {overhead:.3f} s = {overhead / total:.1%} of the stage "
          f"(target < 5%; against the reference's ~11 s GPU refine it would be {overhead / 11:.1%})")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--upscale-child":
        upscale_child(sys.argv[2], int(sys.argv[3]))
        return
    parts = sys.argv[1:] or ["refine", "upscale"]
    with tempfile.TemporaryDirectory() as folder:
        if "refine" in parts:
            measure_refine(Path(folder))
        if "upscale" in parts:
            measure_upscale(Path(folder))


if __name__ == "__main__":
    main()
