"""Generative refinement with diffusers: FLUX.1 Fill, or any inpainting pipeline
``AutoPipelineForInpainting`` knows (SD 1.5/2 inpaint, SDXL inpaint).

Loads from a registry name, a Hugging Face repository id (token and HF_HOME
respected, offline mode honoured), a local diffusers folder, or the single-file
FLUX.1 Fill ``.safetensors`` ComfyUI users keep. Prompt embeddings are computed
once per prompt and cached, after which FLUX's two text encoders are dropped:
for the usual empty prompt they are never needed again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelLoadError, ModelNotAvailableError
from ..imaging import quantize
from . import REGISTRY, store
from .device import resolve_device

OFFLOADS = ("none", "model", "sequential")


def _source_of(model: str) -> tuple[str, bool]:
    """(what to hand to diffusers, whether it is local)."""
    entry = REGISTRY.get(model)
    if entry is not None:
        url = entry.download_urls()[0]
        return (url[len("hf://"):] if url.startswith("hf://") else url), False
    path = Path(model).expanduser()
    if path.exists():
        return str(path), True
    if model.count("/") == 1 and not model.startswith((".", "/")):
        return model, False  # a Hugging Face repository id
    raise ModelNotAvailableError(f"refiner model not found: {model} (a folder, a .safetensors file or a repo id)")


def load_pipeline(model: str, *, dtype, token: str | None = None):
    """A diffusers inpainting pipeline, on the CPU, in ``dtype``."""
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    source, local = _source_of(model)
    offline = store.offline() or local
    kwargs = dict(torch_dtype=dtype, local_files_only=offline, token=token or os.environ.get("HF_TOKEN"))
    try:
        if source.endswith(".safetensors"):
            return diffusers.FluxFillPipeline.from_single_file(source, **kwargs)
        index = Path(source) / "model_index.json"
        if local and index.is_file() and '"FluxFillPipeline"' in index.read_text():
            return diffusers.FluxFillPipeline.from_pretrained(source, **kwargs)
        if not local and "flux" in source.lower() and "fill" in source.lower():
            return diffusers.FluxFillPipeline.from_pretrained(source, **kwargs)
        return diffusers.AutoPipelineForInpainting.from_pretrained(source, **kwargs)
    except OSError as exc:
        why = "offline mode is on and it is not in the Hugging Face cache" if offline and not local else str(exc)
        raise ModelNotAvailableError(f"cannot load refiner {model}: {why.splitlines()[0]}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{model} is not an inpainting pipeline diffusers can load: {exc}") from None


class Refiner:
    """``refiner(image, mask, seed=...)`` -> the image repainted inside ``mask``, same size.

    image: float32 RGB H x W x 3 (sides multiples of 16); mask: float32 H x W, 1 = repaint.
    """

    def __init__(self, model: str, *, device: str = "auto", precision: str = "auto", offload: str = "none",
                 token: str | None = None):
        import torch

        if offload not in OFFLOADS:
            raise ModelLoadError(f"unknown offload {offload!r}; choose from {', '.join(OFFLOADS)}")
        self.device = resolve_device(device)
        half = torch.bfloat16 if precision in ("auto", "bf16") else torch.float16
        dtype = torch.float32 if self.device == "cpu" or precision == "fp32" else half
        self.pipeline = load_pipeline(model, dtype=dtype, token=token)
        self.pipeline.set_progress_bar_config(disable=True)
        self.is_flux = type(self.pipeline).__name__.startswith("Flux")
        if offload == "model" and self.device != "cpu":
            self.pipeline.enable_model_cpu_offload(device=self.device)
        elif offload == "sequential" and self.device != "cpu":
            self.pipeline.enable_sequential_cpu_offload(device=self.device)
        else:
            self.pipeline.to(self.device)
        self.label = model
        self._embeddings: dict[str, tuple] = {}

    def _prompt_embeddings(self, prompt: str) -> dict:
        """FLUX prompt embeddings, computed once per prompt; the text encoders are then
        released, since the cache answers every later call."""
        if prompt not in self._embeddings:
            if self.pipeline.text_encoder is None:
                raise ModelLoadError(f"prompt {prompt!r} was not encoded before the text encoders were released")
            embeds, pooled, _ = self.pipeline.encode_prompt(prompt=prompt, prompt_2=prompt, device=self.device)
            self._embeddings[prompt] = (embeds, pooled)
            if prompt == "":
                self.pipeline.text_encoder = self.pipeline.text_encoder_2 = None
        embeds, pooled = self._embeddings[prompt]
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def __call__(self, image: np.ndarray, mask: np.ndarray, *, seed: int, strength: float = 0.8,
                 steps: int = 20, guidance: float = 30.0, prompt: str = "", negative_prompt: str = "") -> np.ndarray:
        import torch

        height, width = mask.shape
        generator = torch.Generator("cpu").manual_seed(seed)
        common = dict(image=Image.fromarray(quantize(image)), mask_image=Image.fromarray(quantize(mask)),
                      height=height, width=width, strength=strength, num_inference_steps=steps,
                      guidance_scale=guidance, generator=generator, output_type="np")
        if self.is_flux:
            result = self.pipeline(**common, **self._prompt_embeddings(prompt))
        else:
            result = self.pipeline(prompt=prompt, negative_prompt=negative_prompt or None, **common)
        return np.asarray(result.images[0], dtype=np.float32)
