"""Pixel representations: the storage modes a file can hold, how each maps to the
pipeline's float RGB, and how changed pixels are encoded back into it.

Modes, as Pillow names the 8-bit ones: "1", "L", "LA", "P" (palette), "RGB",
"RGBA", "CMYK", "LAB"; 16-bit: "I;16" (gray), "LA;16", "RGB;16", "RGBA;16"; and
32-bit gray as scientific TIFFs store it: "F" (float) and "I" (signed integer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..imaging import luma, quantize, to_float

ALPHA_MODES = frozenset({"LA", "RGBA", "LA;16", "RGBA;16"})
GRAY_MODES = frozenset({"1", "L", "LA", "I;16", "LA;16", "F", "I"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "LA;16", "RGB;16", "RGBA;16"})
_PILLOW_CONVERTED = frozenset({"CMYK", "LAB"})  # colour spaces Pillow converts to and from RGB
_INT32 = np.iinfo(np.int32)

# Where a format cannot hold a mode: the modes to try instead, nearest first.
FALLBACKS = {
    "1": ("L", "RGB"),
    "L": ("RGB",),
    "LA": ("RGBA",),
    "P": ("RGB",),  # "RGBA" when the palette has transparency (see ``fallbacks``)
    "CMYK": ("RGB",),
    "LAB": ("RGB",),
    "I;16": ("L", "RGB"),
    "LA;16": ("RGBA;16", "LA", "RGBA"),
    "RGB;16": ("RGB",),
    "RGBA;16": ("RGBA",),
    "F": (),  # 32-bit samples: TIFF or nothing, never silently rounded
    "I": (),
}


def colour_space(mode: str) -> str:
    """The family an ICC profile describes: gray, rgb, cmyk or lab."""
    if mode in GRAY_MODES:
        return "gray"
    return {"CMYK": "cmyk", "LAB": "lab"}.get(mode, "rgb")


@dataclass(frozen=True)
class Pixels:
    """An image in a file's own representation.

    ``values``: H x W (one channel) or H x W x C, in the mode's dtype (bool for "1",
    uint8, uint16, float32 for "F", int32 for "I"); the last channel is alpha for
    ALPHA_MODES. A palette image keeps its indices, colours and per-entry alpha;
    "F" and "I" keep the values that the pipeline's 0 and 1 stand for.
    """

    values: np.ndarray
    mode: str
    palette: np.ndarray | None = None  # "P": N x 3 uint8
    palette_alpha: np.ndarray | None = None  # "P": N uint8, from the file's transparency
    value_range: tuple[float, float] = (0.0, 1.0)  # "F", "I"

    @property
    def size(self) -> tuple[int, int]:
        return self.values.shape[1], self.values.shape[0]

    @property
    def alpha(self) -> np.ndarray | None:
        """The alpha channel in the mode's depth, or None."""
        if self.mode in ALPHA_MODES:
            return self.values[..., -1]
        if self.mode == "P" and self.palette_alpha is not None:
            return self.palette_alpha[self.values]
        return None

    @property
    def colour(self) -> np.ndarray:
        """The colour (or gray) channels without alpha."""
        return self.values[..., :-1] if self.mode in ALPHA_MODES else self.values

    def rgb(self) -> np.ndarray:
        """float32 H x W x 3 in [0, 1]."""
        return np.ascontiguousarray(self._rgb_of(self.colour))

    def _rgb_of(self, colour: np.ndarray) -> np.ndarray:
        """float RGB of colour values in this mode (any leading shape)."""
        if self.mode == "P":
            return to_float(self.palette[colour])
        if self.mode in _PILLOW_CONVERTED:
            flat = colour.reshape(1, -1, colour.shape[-1])
            rgb = np.asarray(Image.fromarray(np.ascontiguousarray(flat), self.mode).convert("RGB"))
            return to_float(rgb).reshape(*colour.shape[:-1], 3)
        if self.mode in GRAY_MODES:
            return np.repeat(self._gray_of(colour)[..., None], 3, axis=-1)
        return to_float(colour)

    def _gray_of(self, colour: np.ndarray) -> np.ndarray:
        """float gray of a gray mode's colour values."""
        gray = colour[..., 0] if colour.ndim == 3 else colour
        if self.mode in ("F", "I"):
            low, high = self.value_range
            if (low, high) == (0, 1) and gray.dtype == np.float32:  # already a mask's values
                return np.clip(gray, 0.0, 1.0)
            return np.clip((gray.astype(np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)
        return gray.astype(np.float32) if self.mode == "1" else to_float(gray)

    def brightest(self) -> np.ndarray:
        """float32 H x W in [0, 1]: the brightest colour channel, for gray modes the gray
        itself (a mask's values; a 24 MP gray mask is not made RGB to find its maximum)."""
        if self.mode in GRAY_MODES:
            return np.ascontiguousarray(self._gray_of(self.colour), dtype=np.float32)
        if self.mode == "P" or self.mode in _PILLOW_CONVERTED:
            return self.rgb().max(axis=2)
        # RGB(A) in 8 or 16 bits: the integers' maximum, channel by channel (numpy's max
        # over the last axis of an interleaved array is slow), then made float: a 24 MP
        # RGBA mask took 3 s made float RGB first, now a tenth of that
        colour = self.colour
        values = colour[..., 0].copy()
        for channel in range(1, colour.shape[-1]):
            np.maximum(values, colour[..., channel], out=values)
        return to_float(values)

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """Colour values in this mode for float RGB pixels (N x 3): what ``colour``
        holds for them."""
        if self.mode == "P":
            return self._nearest_palette_entries(rgb)
        if self.mode in _PILLOW_CONVERTED:
            image = Image.fromarray(quantize(rgb.reshape(1, -1, 3)), "RGB").convert(self.mode)
            return np.asarray(image).reshape(-1, len(self.mode))
        if self.mode in GRAY_MODES:
            gray = luma(rgb)
            if self.mode == "1":
                return gray >= 0.5
            if self.mode in ("F", "I"):
                low, high = self.value_range
                values = low + gray.astype(np.float64) * (high - low)
                if self.mode == "F":
                    return values.astype(np.float32)
                return np.clip(np.rint(values), _INT32.min, _INT32.max).astype(np.int32)
            encoded = quantize(gray, self.values.dtype.type)
            return encoded[:, None] if self.mode in ALPHA_MODES else encoded
        return quantize(rgb, self.values.dtype.type)

    def _nearest_palette_entries(self, rgb: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """The palette index nearest each colour, among the opaque entries when the
        palette has transparency (a filled pixel must not turn see-through)."""
        candidates = np.arange(len(self.palette))
        if self.palette_alpha is not None and (self.palette_alpha == 255).any():
            candidates = candidates[self.palette_alpha == 255]
        colours = to_float(self.palette[candidates])
        indices = np.empty(len(rgb), dtype=np.uint8)
        for start in range(0, len(rgb), chunk):
            part = rgb[start:start + chunk]
            distance = ((part[:, None, :] - colours[None, :, :]) ** 2).sum(axis=2)
            indices[start:start + chunk] = candidates[distance.argmin(axis=1)]
        return indices

    def with_rgb(self, rgb: np.ndarray) -> Pixels:
        """A copy holding ``rgb`` (H x W x 3): pixels whose RGB is unchanged keep
        their stored values verbatim, alpha is untouched, the rest are encoded."""
        changed = np.any(rgb != self.rgb(), axis=2)
        values = self.values.copy()
        if changed.any():
            if self.mode in ALPHA_MODES:
                values[..., :-1][changed] = self.encode(rgb[changed])
            else:
                values[changed] = self.encode(rgb[changed])
        return replace(self, values=values)

    def converted(self, mode: str, rgb: np.ndarray) -> Pixels:
        """``rgb`` in another mode (for a format that cannot hold this one), alpha
        carried over at the new depth."""
        height, width = rgb.shape[:2]
        target = Pixels(np.zeros((height, width), dtype=_dtype_of(mode)), mode)
        colour = target.encode(rgb.reshape(-1, 3)).reshape(height, width, -1)
        if mode in ALPHA_MODES:
            alpha = self.alpha
            alpha = np.full((height, width), 255, np.uint8) if alpha is None else alpha
            top = 65535 if mode.endswith(";16") else 255
            alpha = quantize(to_float(alpha), np.uint16 if top == 65535 else np.uint8)
            colour = np.concatenate([colour, alpha[..., None]], axis=2)
        return Pixels(colour[..., 0] if colour.shape[2] == 1 else colour, mode)

    def fallbacks(self) -> tuple[str, ...]:
        if self.mode == "P" and self.palette_alpha is not None:
            return ("RGBA",)
        return FALLBACKS.get(self.mode, ())


def _dtype_of(mode: str):
    if mode == "1":
        return bool
    if mode.endswith(";16"):
        return np.uint16
    return {"F": np.float32, "I": np.int32}.get(mode, np.uint8)
