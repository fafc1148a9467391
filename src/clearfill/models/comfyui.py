"""The model files a ComfyUI install already holds.

Users of the reference workflow have its models in ComfyUI's ``models`` folder:
the FLUX.1 Fill transformer (``unet/`` or ``diffusion_models/``), its text encoders
(``clip/`` or ``text_encoders/``: ``clip_l`` and ``t5xxl_*``), the VAE (``vae/ae``),
SR models (``upscale_models/``) and big-lama (``inpaint/`` or ``lama/``, where the
inpaint nodes keep it). ``CLEARFILL_COMFYUI_DIR`` (or ``--comfyui-dir``) names the
ComfyUI folder or its ``models`` folder; registry names then resolve to these files
before the download cache, so nothing is downloaded twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError

ENVIRONMENT_VARIABLE = "CLEARFILL_COMFYUI_DIR"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


@dataclass(frozen=True)
class ComfyUIModels:
    folder: Path  # the ``models`` folder
    flux_fill: Path | None = None
    clip_l: Path | None = None
    t5xxl: Path | None = None
    vae: Path | None = None
    lama: Path | None = None
    upscalers: tuple[Path, ...] = ()

    def found(self) -> list[tuple[str, Path]]:
        """(role, file) for every file found, for listings."""
        roles = [("FLUX.1 Fill transformer", self.flux_fill), ("CLIP-L text encoder", self.clip_l),
                 ("T5-XXL text encoder", self.t5xxl), ("FLUX VAE", self.vae), ("LaMa", self.lama)]
        return [(role, path) for role, path in roles if path] + [("upscaler", path) for path in self.upscalers]

    def by_filename(self, filename: str) -> Path | None:
        """The file a registry entry names (``big-lama.pt``, an upscaler's file name), if present."""
        candidates = [self.lama, *self.upscalers]
        return next((path for path in candidates if path and path.name == filename), None)


def _first(folder: Path, subfolders: tuple[str, ...], patterns: tuple[str, ...]) -> Path | None:
    for sub in subfolders:
        for pattern in patterns:
            matches = sorted(p for p in (folder / sub).glob(pattern) if p.is_file())
            if matches:
                return matches[0]
    return None


def scan(root: Path) -> ComfyUIModels:
    """The files the reference workflow uses, in a ComfyUI folder or its ``models`` folder."""
    root = Path(root).expanduser()
    folder = root / "models" if (root / "models").is_dir() else root
    if not folder.is_dir():
        raise InvalidInputError(f"ComfyUI folder not found: {root}")
    encoders = ("clip", "text_encoders")
    upscale_folder = folder / "upscale_models"
    upscalers = tuple(sorted(p for p in upscale_folder.iterdir() if p.suffix.lower() in WEIGHT_SUFFIXES)) \
        if upscale_folder.is_dir() else ()
    return ComfyUIModels(
        folder=folder,
        flux_fill=_first(folder, ("unet", "diffusion_models"),
                         ("flux1-fill-dev*.safetensors", "flux1-fill*.safetensors")),
        clip_l=_first(folder, encoders, ("clip_l.safetensors", "clip_l*.safetensors")),
        # fp16 first: the fp8 "scaled" T5 files need ComfyUI's own dequantisation
        t5xxl=_first(folder, encoders, ("t5xxl_fp16.safetensors", "t5xxl*.safetensors")),
        vae=_first(folder, ("vae",), ("ae.safetensors", "flux*ae*.safetensors")),
        lama=_first(folder, ("inpaint", "lama"), ("big-lama.pt", "big-lama.*", "big_lama.*", "lama*.*")),
        upscalers=upscalers,
    )


def configured() -> ComfyUIModels | None:
    """The ComfyUI install ``CLEARFILL_COMFYUI_DIR`` names, if any."""
    root = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    return scan(Path(root)) if root else None
