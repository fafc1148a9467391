"""LaMa (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions"): the remover the reference workflow trusts to make an object go.

Loads big-lama in the layouts users have (IOPaint's TorchScript ``big-lama.pt``,
the original checkpoint's ``generator.*`` state dict, a spandrel-style state dict,
safetensors) through the model manager. On large images it runs per hole region
on a crop with a margin, as IOPaint does: LaMa is trained at 256-512 px, degrades
on huge inputs, and its memory grows with the area it sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .. import imaging, models
from ..errors import ChecksumError, ModelLoadError, ModelNotAvailableError
from ..models.device import LAMA_PRECISION, PrecisionPolicy, resolve_device, spandrel_precision
from ..models.loading import load_descriptor
from ..models.pool import POOL
from .base import register


@dataclass(frozen=True)
class LamaConfig:
    model: str = "big-lama"  # registry name or local file
    region_trigger: int = 800  # above this long side, always run per hole region, never on the whole image
    region_margin: int = 128  # context around each region
    region_max_fraction: float = 0.75  # below the trigger, run per region when the regions cover at most
    # this fraction of the frame (computing less is the only real CPU speed-up; 0 disables)
    max_side: int = 0  # if > 0, downscale any input whose long side exceeds it (a resize limit)
    precision: str = "auto"  # LaMa and MAT run fp32 everywhere (models.device says why); others per spandrel
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU

    def __post_init__(self) -> None:
        if self.region_trigger < 16 or self.region_margin < 0 or self.max_side < 0:
            raise ValueError("region_trigger must be >= 16, region_margin and max_side >= 0")


def region_boxes(hole: np.ndarray, margin: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) boxes, one per group of hole parts: each connected part's
    bounding box grown by ``margin`` and clipped to the image, overlapping boxes merged."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    height, width = hole.shape
    boxes = [
        (max(0, x - margin), max(0, y - margin), min(width, x + w + margin), min(height, y + h + margin))
        for x, y, w, h, _ in stats[1:count]
    ]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes, key=lambda box: (box[1], box[0]))


def to_channels_last(model) -> None:
    """NHWC layout for every 4-D weight; other ranks (MAT's 5-D modulated weights) stay as
    they are, where ``model.to(memory_format=...)`` would refuse the whole model."""
    import torch

    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class ArchitectureSupport:
    """How one spandrel inpainting architecture is run: its precision policy, whether its
    output survives the NHWC layout, and ``prepare(descriptor, device, dtype)``, which
    fixes what the port leaves undone and returns ``forward(pixels, mask)``."""

    precision: PrecisionPolicy
    channels_last: bool = True
    prepare: Callable = lambda descriptor, device, dtype: descriptor


# By spandrel's architecture id; other modules add theirs (removers/mat.py adds MAT).
ARCHITECTURES: dict[str, ArchitectureSupport] = {"LaMa": ArchitectureSupport(LAMA_PRECISION)}


@dataclass(frozen=True)
class LoadedInpainter:
    """A spandrel inpainting network on its device, ready to run: what the model pool
    keeps, shared by every remover (and every option set) that names the same file."""

    descriptor: object
    device: str
    dtype: object
    channels_last: bool
    forward: Callable  # forward(pixels, mask) -> pixels, tensors on ``device``
    label: str


def load_inpainter(model_file, device: str, precision: str, channels_last: bool) -> LoadedInpainter:
    from spandrel import MaskedImageModelDescriptor

    descriptor = load_descriptor(model_file.path, published=model_file.entry)
    if not isinstance(descriptor, MaskedImageModelDescriptor):
        raise ModelLoadError(f"{model_file.label} is a {descriptor.architecture.name} model, not an inpainting model")
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):  # e.g. a LaMa trained without its mask
        raise ModelLoadError(f"{model_file.label} inpaints {descriptor.input_channels}-channel images into "
                             f"{descriptor.output_channels} channels; clearfill's removers fill RGB images")
    name = descriptor.architecture.id
    support = ARCHITECTURES.get(name) or ArchitectureSupport(spandrel_precision(descriptor, name))
    dtype = support.precision.dtype(precision, device)
    descriptor.to(device)
    descriptor.model.to(dtype=dtype)
    channels_last = channels_last and support.channels_last
    if channels_last:
        to_channels_last(descriptor.model)
    return LoadedInpainter(descriptor, device, dtype, channels_last, support.prepare(descriptor, device, dtype),
                           model_file.label)


class LamaRemover:
    """A spandrel inpainting model (LaMa, MAT or any ``MaskedImageModelDescriptor``) as a
    remover: the network comes from the model pool, the settings are this remover's own."""

    def __init__(self, config: LamaConfig, device: str = "auto"):
        self.config = config
        device = resolve_device(device)
        model_file = models.locate(config.model)
        key = ("inpainter", str(model_file.path.resolve()), device, config.precision, config.channels_last)
        self.network = POOL.get(key, lambda: load_inpainter(model_file, device, config.precision,
                                                            config.channels_last))
        self.device, self.dtype, self.label = self.network.device, self.network.dtype, self.network.label
        self.descriptor, self.channels_last = self.network.descriptor, self.network.channels_last
        self._forward = self.network.forward

    def __call__(self, image: np.ndarray, hole: np.ndarray, progress=None) -> np.ndarray:
        """Reports ``progress(done, total)`` after each hole region."""
        height, width = hole.shape
        boxes = region_boxes(hole, self.config.region_margin)
        covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) / (height * width)
        if max(height, width) <= self.config.region_trigger and covered > self.config.region_max_fraction:
            return self._run(image, hole)
        out = image.copy()
        for done, (x0, y0, x1, y1) in enumerate(boxes, start=1):
            region_hole = hole[y0:y1, x0:x1]
            filled = self._run(image[y0:y1, x0:x1], region_hole)
            out[y0:y1, x0:x1][region_hole] = filled[region_hole]
            if progress is not None:
                progress(done, len(boxes))
        return out

    def _run(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """One LaMa pass (downscaled first if over ``max_side``); spandrel pads to the
        model's multiple of 8 and crops back."""
        limit = self.config.max_side
        height, width = hole.shape
        if limit and max(height, width) > limit:
            scale = limit / max(height, width)
            size = (max(16, round(width * scale)), max(16, round(height * scale)))
            small_hole = imaging.resize(hole.astype(np.float32), size, "bilinear") > 0
            small = self._infer(imaging.resize(image, size, "box"), small_hole)
            return imaging.resize(small, (width, height), "bicubic")
        return self._infer(image, hole)

    def _infer(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import torch

        if image.shape[0] < 16 or image.shape[1] < 16:  # below LaMa's minimum: pad by reflection
            pad = ((0, max(0, 16 - image.shape[0])), (0, max(0, 16 - image.shape[1])))
            filled = self._infer(np.pad(image, pad + ((0, 0),), mode="edge"), np.pad(hole, pad, mode="edge"))
            return filled[: image.shape[0], : image.shape[1]]
        threads = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            with torch.inference_mode():
                pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
                mask = torch.from_numpy(hole.astype(np.float32))[None, None]
                layout = torch.channels_last if self.channels_last else torch.contiguous_format
                pixels = pixels.to(self.device, self.dtype).contiguous(memory_format=layout)
                mask = mask.to(self.device, self.dtype).contiguous(memory_format=layout)
                result = self._forward(pixels, mask)
                return result[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
        finally:
            torch.set_num_threads(threads)


def _lama_usable(download: bool = True) -> tuple[bool, str]:
    """For "auto": usable when torch is installed and big-lama is cached or (when
    ``download``) downloads now."""
    try:
        import spandrel  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False, "torch/spandrel not installed (pip install 'clearfill[models]')"
    ok, why = models.usable_without_download("big-lama")
    if ok or models.store.offline() or not download:
        return ok, why
    try:
        models.locate("big-lama")
    except (ModelNotAvailableError, ChecksumError):
        return False, ("big-lama weights missing and could not be downloaded "
                       "(`clearfill models download big-lama` says why)")
    return True, ""


@register("lama", config=LamaConfig, needs_weights=True, auto_rank=30, usable=_lama_usable,
          summary="LaMa (big-lama): learned fill, the reference workflow's remover; needs weights and torch")
def lama(config: LamaConfig, device: str = "auto") -> LamaRemover:
    return LamaRemover(config, device=device)
