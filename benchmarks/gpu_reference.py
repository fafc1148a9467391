"""The whole reference workflow on a GPU, with the full-size architectures at random
weights: big-lama (51 M), MoSR 2x (spandrel's default size, as the reference's
2x-AnimeSharpV2_MoSR_Sharp), FLUX.1 Fill (12 B transformer, T5-XXL, CLIP-L and FLUX's
VAE, built from the published configs in bf16 directly on the device).

Prints per-stage seconds and the peak GPU memory for: a cold run, a warm run (the
prompt embeddings cached, the text encoders released), and a run with
``refine.offload=model`` (each model moved to the GPU only while it runs).

    python benchmarks/gpu_reference.py             # on a CUDA GPU (about 3 minutes on an H100)
    python benchmarks/gpu_reference.py --tiny      # tiny FLUX/MoSR configs on the CPU: checks the script

Random weights make the pictures meaningless; what is measured is time and memory,
which depend only on the architectures and sizes.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
SEED_EXAMPLE = REPO.parent / "shared" / "seed-example"
BUNDLED = REPO / "examples" / "coffee"


def example(folder: Path | None) -> tuple[Path, Path, str]:
    if folder is not None:
        return folder / "original.png", folder / "mask.png", f"{folder}"
    if (SEED_EXAMPLE / "original.png").is_file():
        return SEED_EXAMPLE / "original.png", SEED_EXAMPLE / "mask.png", "the seed example"
    return BUNDLED / "coffee.png", BUNDLED / "spoon-mask.png", "the bundled coffee example (seed example not found)"


def small_models(folder: Path, tiny: bool) -> tuple[Path, Path]:
    """big-lama and the MoSR upscaler as safetensors files, loaded back by clearfill's own loader."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa
    from spandrel.architectures.MoSR import MoSR

    torch.manual_seed(0)
    files = {}
    for name, model in (("big-lama", LaMa(in_nc=4, out_nc=3)),
                        ("mosr-2x", MoSR(upscale=2, n_block=2, dim=16) if tiny else MoSR(upscale=2))):
        files[name] = folder / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(files[name]))
    return files["big-lama"], files["mosr-2x"]


def build_flux(tiny: bool, device: str):
    """FLUX.1 Fill at random weights, built on ``device`` in the refiner's precision."""
    import torch
    from tiny_flux import FULL, flux_fill_pipeline, tiny_configs

    from clearfill.models.device import FLUX_PRECISION

    dtype = FLUX_PRECISION.dtype("auto", device)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return flux_fill_pipeline(tiny_configs(vae_levels=4) if tiny else FULL)
    finally:
        torch.set_default_dtype(previous)


def gpu_gb(device: str, peak: bool) -> float:
    import torch

    if not device.startswith("cuda"):
        return float("nan")
    return (torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()) / 2 ** 30


def run_once(label: str, pipeline, image: Path, mask: Path, device: str) -> None:
    import torch

    import clearfill
    from clearfill.sheet import SHOWN_ONLY_WHEN_RUN

    resident = gpu_gb(device, peak=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = clearfill.remove(image, mask, pipeline=pipeline, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    stages = "  ".join(f"{record.name} {record.seconds:.2f}s" if record.ran else f"{record.name} skipped"
                       for record in result.stages if record.ran or record.name not in SHOWN_ONLY_WHEN_RUN)
    print(f"{label:<28} total {total:7.2f} s   GPU memory {resident:5.1f} GiB before, peak {gpu_gb(device, True):5.1f} "
          f"GiB   {stages}", flush=True)
    if not result.ran("refine") or not result.ran("remove"):
        raise SystemExit(f"{label}: a stage did not run: {result.skipped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny FLUX and MoSR configs (a CPU dry run)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--steps", type=int, default=20, help="refiner steps (the reference's 20)")
    parser.add_argument("--example", type=Path, help="a folder with original.png and mask.png (default: the "
                                                     "seed example in ../shared)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the network
    import torch

    import clearfill
    from clearfill.api import resolve_config
    from clearfill.models.refiner import Refiner

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.tiny:
        raise SystemExit("the full-size run needs a CUDA GPU; use --tiny for a CPU dry run")
    image, mask, what = example(args.example)
    on = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"reference workflow on {what}, {on}, {'tiny' if args.tiny else 'full-size'} architectures at random weights",
          flush=True)
    with tempfile.TemporaryDirectory() as folder:
        lama, mosr = small_models(Path(folder), args.tiny)
        settings = {"remove.method": "lama", "remove.model": str(lama), "resize.upscaler": str(mosr),
                    "resize.upscaler_on_cpu": True, "resize.upscaler_fallback": False, "refine.steps": args.steps,
                    "refine.model": None}  # the refiner is built below, in memory
        plan = clearfill.build_pipeline(resolve_config("reference", settings), device=device)
        refine = next(stage for stage in plan.stages if stage.name == "refine")
        for offload in ("none", "model"):
            refine.refiner = None
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            start = time.perf_counter()
            flux = build_flux(args.tiny, device)
            params = sum(p.numel() for p in flux.transformer.parameters()) / 1e9
            seconds = time.perf_counter() - start
            print(f"built FLUX.1 Fill ({params:.2f} B transformer, {flux.dtype}) in {seconds:.1f} s", flush=True)
            if offload != "none":
                flux.to("cpu")  # offloading starts from the CPU
            refine.refiner = Refiner.from_pipeline(flux, device=device, offload=offload,
                                                   label="FLUX.1 Fill (random weights)")
            del flux
            label = "" if offload == "none" else f"refine.offload={offload}, "
            run_once(f"{label}cold", plan, image, mask, device)
            run_once(f"{label}warm (embeddings cached)", plan, image, mask, device)

if __name__ == "__main__":
    main()
