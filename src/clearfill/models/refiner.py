"""Generative refinement with diffusers: FLUX.1 Fill, or any inpainting pipeline
``AutoPipelineForInpainting`` knows (SD 1.5/2 inpaint, SDXL inpaint).

Loads from a registry name, a Hugging Face repository id (token and HF_HOME
respected, offline mode honoured), a local diffusers folder, or the single-file
FLUX.1 Fill ``.safetensors`` ComfyUI users keep (the transformer alone: the text
encoders, VAE, tokenizers and configs come from ``base``, a diffusers folder or the
official repository in the Hugging Face cache, or from a ComfyUI install's files).
Prompt embeddings are computed once per prompt and kept (the most recent
``MOST_CACHED_PROMPTS``); FLUX's two text encoders stay loaded for the next new
prompt (a pooled refiner serves every request), parked on the CPU between
encodings when the pipeline itself sits on a GPU.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ClearfillError, ModelLoadError, ModelNotAvailableError
from ..imaging import quantize
from . import REGISTRY, comfyui, store
from .device import FLUX_PRECISION, resolve_device
from .registry import hub_source

OFFLOADS = ("none", "model", "sequential")
FLUX_FILL_BASE = "black-forest-labs/FLUX.1-Fill-dev"
# What a FLUX.1 Fill single file (the transformer alone) needs from elsewhere: folder -> what it is.
FLUX_PARTS = {"text_encoder": "CLIP-L text encoder", "text_encoder_2": "T5-XXL text encoder", "vae": "VAE",
              "tokenizer": "CLIP tokenizer", "tokenizer_2": "T5 tokenizer", "scheduler": "scheduler config",
              "transformer": "transformer config"}
WEIGHT_PARTS = ("text_encoder", "text_encoder_2", "vae")
MOST_CACHED_PROMPTS = 32  # prompts come from requests: their embeddings are kept, but not without end


def _source_of(model: str) -> tuple[str, bool]:
    """(what to hand to diffusers, whether it is local)."""
    found = hub_source(model)
    if found is None:
        raise ModelNotAvailableError(f"refiner model not found: {model} (a folder, a .safetensors file or a repo id)")
    return found


def _loading_error(model: str, exc: Exception, offline: bool) -> ClearfillError:
    """diffusers, transformers and huggingface_hub raise their own types (some a bare
    ``Exception``); each becomes clearfill's error with the first line of what they said."""
    text = f"{type(exc).__name__}: {exc}"
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    if any(word in text for word in ("ConnectError", "Name or service not known", "ConnectionError",
                                     "Temporary failure in name resolution", "timed out")):
        return ModelNotAvailableError(f"cannot load refiner {model}: the Hugging Face Hub cannot be reached "
                                      "(no network?); use a local diffusers folder or set HF_HUB_OFFLINE=1")
    if isinstance(exc, OSError) or "local_files_only" in text or "LocalEntryNotFound" in text:
        why = "offline mode is on and it is not in the Hugging Face cache" if offline else first
        return ModelNotAvailableError(f"cannot load refiner {model}: {why}")
    return ModelLoadError(f"cannot load refiner {model}: {first}")


def load_pipeline(model: str, *, dtype, token: str | None = None, base: str = FLUX_FILL_BASE):
    """A diffusers inpainting pipeline, on the CPU, in ``dtype``. ``base`` gives the parts a
    FLUX.1 Fill single file lacks (a diffusers folder or a Hugging Face repository)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    install = comfyui.configured()
    if model in REGISTRY and REGISTRY[model].kind == "refiner" and install and install.flux_fill:
        model = str(install.flux_fill)  # the ComfyUI user's own FLUX.1 Fill file
    source, local = _source_of(model)
    offline = store.offline() or store.downloads_blocked() or local
    kwargs = dict(torch_dtype=dtype, local_files_only=offline, token=token or os.environ.get("HF_TOKEN"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the libraries' own deprecations: not the user's to act on
            return _load(source, local, kwargs, base, install)
    except ClearfillError:
        raise
    except Exception as exc:  # see _loading_error: the libraries' error types are not ours to list
        raise _loading_error(model, exc, offline and not local) from None


def _load(source: str, local: bool, kwargs: dict, base: str, install):
    import diffusers

    if source.endswith(".safetensors"):
        return _flux_fill_from_single_file(Path(source), base, install, dtype=kwargs["torch_dtype"],
                                           token=kwargs["token"])
    index = Path(source) / "model_index.json"
    if local and index.is_file() and '"FluxFillPipeline"' in index.read_text():
        return diffusers.FluxFillPipeline.from_pretrained(source, **kwargs)
    if not local and "flux" in source.lower() and "fill" in source.lower():
        return diffusers.FluxFillPipeline.from_pretrained(source, **kwargs)
    return diffusers.AutoPipelineForInpainting.from_pretrained(source, **kwargs)


def prefetch(model: str, *, token: str | None = None) -> None:
    """Download a hub refiner's files into the Hugging Face cache now (what loading it
    needs, nothing more), so a server's requests find it there; a local model, offline
    mode or a blocked download does nothing."""
    source, local = _source_of(model)
    if local or store.offline() or store.downloads_blocked():
        return
    import diffusers

    try:
        diffusers.DiffusionPipeline.download(source, token=token or os.environ.get("HF_TOKEN"))
    except Exception as exc:  # the hub's error types are not ours to list
        raise _loading_error(model, exc, offline=False) from None


def _base_folder(base: str, token: str | None) -> Path:
    """``base`` as a local folder: itself, or the Hugging Face cache's snapshot of the repository
    (only its small and shared parts: never its transformer, which the single file replaces)."""
    path = Path(base).expanduser()
    if path.is_dir():
        return path
    if base.count("/") != 1 or base.startswith((".", "/", "~")) or base.endswith(".safetensors"):
        raise ModelNotAvailableError(f"refine.base {base} is neither a diffusers folder nor a repository id")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base, token=token, local_files_only=store.offline(),
                                      allow_patterns=[f"{part}/*" for part in FLUX_PARTS if part != "transformer"]
                                      + ["transformer/config.json", "model_index.json"]))
    except Exception as exc:
        raise _missing_parts(base, list(FLUX_PARTS), why=str(exc).splitlines()[0] if str(exc) else "") from None


def _missing_parts(base: str, parts: list[str], why: str = "") -> ModelNotAvailableError:
    names = ", ".join(FLUX_PARTS[part] for part in parts)
    return ModelNotAvailableError(
        f"the FLUX.1 Fill single file holds only the transformer; the rest of the pipeline is missing from "
        f"{base} ({names}{'; ' + why if why else ''}): download it with `hf download {FLUX_FILL_BASE} "
        f"--exclude 'transformer/*' 'flux1-fill-dev.safetensors'`, or set refine.base to a diffusers folder, "
        f"or point CLEARFILL_COMFYUI_DIR at a ComfyUI install with clip_l, t5xxl and ae")


def _part_present(folder: Path, part: str) -> bool:
    """Whether ``folder`` holds ``part``: its weights for the models, any file for the others."""
    suffixes = (".safetensors", ".bin") if part in WEIGHT_PARTS else None
    return (folder / part).is_dir() and any(not suffixes or p.suffix in suffixes for p in (folder / part).iterdir())


def _flux_fill_from_single_file(file: Path, base: str, install, *, dtype, token: str | None):
    """FLUX.1 Fill from its single-file transformer (Black Forest Labs' key layout, as
    ComfyUI users keep it): the transformer through diffusers' single-file converter with
    ``base``'s config, the other parts from ComfyUI's files where present, else from ``base``."""
    import diffusers

    folder = _base_folder(base, token)
    overrides = _comfyui_parts(install, folder, dtype) if install else {}
    missing = [part for part in FLUX_PARTS if part not in overrides and not _part_present(folder, part)]
    if missing:
        raise _missing_parts(base, missing)
    transformer = diffusers.FluxTransformer2DModel.from_single_file(
        str(file), config=str(folder), subfolder="transformer", torch_dtype=dtype, local_files_only=True)
    return diffusers.FluxFillPipeline.from_pretrained(str(folder), transformer=transformer, torch_dtype=dtype,
                                                      local_files_only=True, **overrides)


def _comfyui_parts(install, folder: Path, dtype) -> dict:
    """The text encoders and VAE from a ComfyUI install's single files, built from ``folder``'s
    configs (ComfyUI keeps ``clip_l`` and ``t5xxl`` in transformers' own key layout, and
    ``ae`` in the original layout diffusers' single-file loader converts)."""
    import diffusers
    from transformers import CLIPTextModel, T5EncoderModel

    parts = {}
    if install.vae and (folder / "vae" / "config.json").is_file():
        parts["vae"] = diffusers.AutoencoderKL.from_single_file(str(install.vae), config=str(folder), subfolder="vae",
                                                                torch_dtype=dtype, local_files_only=True)
    for part, file, model_class in (("text_encoder", install.clip_l, CLIPTextModel),
                                    ("text_encoder_2", install.t5xxl, T5EncoderModel)):
        if file and (folder / part / "config.json").is_file():
            parts[part] = _encoder_from_file(model_class, folder / part, file, dtype)
    return parts


def _encoder_from_file(model_class, config_folder: Path, file: Path, dtype):
    from safetensors.torch import load_file

    encoder = model_class(model_class.config_class.from_pretrained(str(config_folder)))
    state = load_file(str(file))
    missing, _ = encoder.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids") and key != "encoder.embed_tokens.weight"]
    if missing:
        raise ModelLoadError(f"{file.name} does not fit {model_class.__name__} ({len(missing)} weights missing, "
                             f"e.g. {missing[0]})")
    return encoder.to(dtype).eval()


class Refiner:
    """``refiner(image, mask, seed=...)`` -> the image repainted inside ``mask``, same size.

    image: float32 RGB H x W x 3 (sides multiples of 16); mask: float32 H x W, 1 = repaint.
    """

    def __init__(self, model: str, *, device: str = "auto", precision: str = "auto", offload: str = "none",
                 token: str | None = None, base: str = FLUX_FILL_BASE):
        self.device = resolve_device(device)
        self.dtype = FLUX_PRECISION.dtype(precision, self.device)
        self._place(load_pipeline(model, dtype=self.dtype, token=token, base=base), offload, label=model)

    @classmethod
    def from_pipeline(cls, pipeline, *, device: str = "auto", offload: str = "none", label: str = "pipeline"):
        """A refiner around a diffusers pipeline built elsewhere (the GPU benchmark builds FLUX
        at random weights in memory: 33 GB it would otherwise write and read back)."""
        refiner = cls.__new__(cls)
        refiner.device, refiner.dtype = resolve_device(device), pipeline.dtype
        refiner._place(pipeline, offload, label=label)
        return refiner

    def _place(self, pipeline, offload: str, *, label: str) -> None:
        if offload not in OFFLOADS:
            raise ModelLoadError(f"unknown offload {offload!r}; choose from {', '.join(OFFLOADS)}")
        self.pipeline = pipeline
        self.pipeline.set_progress_bar_config(disable=True)
        self.is_flux = type(self.pipeline).__name__.startswith("Flux")
        if offload == "model" and self.device != "cpu":
            self.pipeline.enable_model_cpu_offload(device=self.device)
        elif offload == "sequential" and self.device != "cpu":
            self.pipeline.enable_sequential_cpu_offload(device=self.device)
        else:
            self.pipeline.to(self.device)
        self.label = label
        # The encoders are parked on the CPU between prompts where clearfill places the
        # pipeline itself; with offloading, diffusers' hooks move them.
        self._parks_encoders = offload == "none" and self.device != "cpu" and self.is_flux
        self._park_encoders("cpu")
        self._embeddings: OrderedDict[str, tuple] = OrderedDict()
        self._encoding = threading.Lock()

    def _park_encoders(self, device: str) -> None:
        if self._parks_encoders:
            for encoder in (self.pipeline.text_encoder, self.pipeline.text_encoder_2):
                encoder.to(device)

    def _prompt_embeddings(self, prompt: str) -> dict:
        """FLUX prompt embeddings, computed once per prompt and kept for the most recent
        prompts; the text encoders are left as they were for the next one."""
        with self._encoding:
            if prompt in self._embeddings:
                self._embeddings.move_to_end(prompt)
            else:
                self._embeddings[prompt] = self._encode(prompt)
                while len(self._embeddings) > MOST_CACHED_PROMPTS:
                    self._embeddings.popitem(last=False)
            embeds, pooled = self._embeddings[prompt]
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def _encode(self, prompt: str) -> tuple:
        import torch

        self._park_encoders(self.device)
        try:
            with torch.no_grad():  # outside the pipeline's own no_grad: without this the cached
                # embeddings would keep T5's autograd graph, and with it its weights, alive (13 GiB on a GPU)
                embeds, pooled, _ = self.pipeline.encode_prompt(prompt=prompt, prompt_2=prompt, device=self.device)
        finally:
            self._park_encoders("cpu")
        return embeds, pooled

    def __call__(self, image: np.ndarray, mask: np.ndarray, *, seed: int, strength: float = 0.8,
                 steps: int = 20, guidance: float = 30.0, prompt: str = "", negative_prompt: str = "",
                 progress=None) -> np.ndarray:
        """``progress(done, total)`` after each denoising step (it may raise to stop the run)."""
        import torch

        height, width = mask.shape
        generator = torch.Generator("cpu").manual_seed(seed)
        common = dict(image=Image.fromarray(quantize(image)), mask_image=Image.fromarray(quantize(mask)),
                      height=height, width=width, strength=strength, num_inference_steps=steps,
                      guidance_scale=guidance, generator=generator, output_type="np")
        if progress is not None:
            def on_step_end(pipeline, step, timestep, tensors):
                progress(step + 1, getattr(pipeline, "num_timesteps", steps))
                return tensors

            common["callback_on_step_end"] = on_step_end
        if self.is_flux:
            result = self.pipeline(**common, **self._prompt_embeddings(prompt))
        else:
            result = self.pipeline(prompt=prompt, negative_prompt=negative_prompt or None, **common)
        return np.asarray(result.images[0], dtype=np.float32)
