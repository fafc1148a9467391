"""Single-image super-resolution with any model spandrel loads (ESRGAN/RRDB,
Real-ESRGAN Compact, SPAN, MoSR, ...), run in overlapping tiles so a large crop
never needs more memory than one tile.

Tiles overlap by ``overlap`` pixels and are blended across it (see ``ramp``), so
no seam shows where two tiles meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelLoadError
from . import locate
from .device import resolve_device, spandrel_precision
from .loading import load_descriptor
from .pool import POOL


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of size ``tile`` covering [0, length), consecutive ones
    overlapping by at least ``overlap``; the last tile ends exactly at ``length``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def ramp(length: int, overlap_before: int, overlap_after: int) -> np.ndarray:
    """1-D blending weights of a tile. Across an overlap of o pixels the weight is 0
    on the outer quarter (next to the tile's edge, where the model saw zero padding
    instead of the image), rises linearly over the middle half and is 1 on the inner
    quarter; two neighbours' weights sum to 1 at every overlapping pixel."""
    weights = np.ones(length, np.float32)
    if overlap_before:
        weights[:overlap_before] = _rise(overlap_before)
    if overlap_after:
        weights[length - overlap_after:] = _rise(overlap_after)[::-1]
    return weights


def _rise(overlap: int) -> np.ndarray:
    quarter = overlap // 4
    middle = overlap - 2 * quarter
    return np.concatenate([np.zeros(quarter), (np.arange(middle) + 0.5) / middle, np.ones(quarter)]).astype(np.float32)


def run_tiled(infer, image: np.ndarray, scale: int, tile: int, overlap: int, progress=None) -> np.ndarray:
    """Apply ``infer`` (H x W x 3 -> sH x sW x 3) tile by tile and blend the results;
    ``progress(done, total)`` after each tile."""
    height, width = image.shape[:2]
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = np.zeros((height * scale, width * scale, 3), np.float32)
    total = np.zeros((height * scale, width * scale, 1), np.float32)
    for i, y in enumerate(rows):
        for j, x in enumerate(cols):
            h, w = min(tile, height - y), min(tile, width - x)
            result = infer(image[y:y + h, x:x + w])
            before_y = (rows[i - 1] + tile - y) if i else 0
            after_y = (y + h - rows[i + 1]) if i + 1 < len(rows) else 0
            before_x = (cols[j - 1] + tile - x) if j else 0
            after_x = (x + w - cols[j + 1]) if j + 1 < len(cols) else 0
            weight = np.outer(ramp(h * scale, before_y * scale, after_y * scale),
                              ramp(w * scale, before_x * scale, after_x * scale))[..., None]
            out[y * scale:(y + h) * scale, x * scale:(x + w) * scale] += weight * result
            total[y * scale:(y + h) * scale, x * scale:(x + w) * scale] += weight
            if progress is not None:
                progress(i * len(cols) + j + 1, len(rows) * len(cols))
    return out / total


@dataclass(frozen=True)
class LoadedUpscaler:
    """An SR network on its device: what the model pool keeps."""

    descriptor: object
    device: str
    dtype: object
    label: str

    @property
    def scale(self) -> int:
        return self.descriptor.scale


def load_upscaler(model_file, device: str, precision: str) -> LoadedUpscaler:
    from spandrel import ImageModelDescriptor

    descriptor = load_descriptor(model_file.path, published=model_file.entry)
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.input_channels != 3:
        raise ModelLoadError(f"{model_file.label} is not a 3-channel image-to-image (super-resolution) model")
    dtype = spandrel_precision(descriptor, model_file.label).dtype(precision, device)
    descriptor.to(device)
    descriptor.model.to(dtype=dtype)
    return LoadedUpscaler(descriptor, device, dtype, model_file.label)


class Upscaler:
    """``upscaler(image)`` -> image ``scale`` times larger (float RGB): a pooled SR
    network run in tiles of this upscaler's own size."""

    def __init__(self, model: str, *, device: str = "auto", tile: int = 512, overlap: int = 32,
                 precision: str = "auto"):
        device = resolve_device(device)
        model_file = locate(model)
        self.network = POOL.get(("upscaler", str(model_file.path.resolve()), device, precision),
                                lambda: load_upscaler(model_file, device, precision))
        self.device, self.dtype, self.label = self.network.device, self.network.dtype, self.network.label
        self.descriptor, self.scale = self.network.descriptor, self.network.scale
        self.tile, self.overlap = tile, overlap

    def _infer(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
            result = self.descriptor(pixels.to(self.device, self.dtype))
            return result[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()

    def __call__(self, image: np.ndarray, progress=None) -> np.ndarray:
        return run_tiled(self._infer, image, self.scale, self.tile, self.overlap, progress)
