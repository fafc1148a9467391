"""Small pure functions over the pixel convention every stage shares.

Images are float32 arrays H x W x 3 (RGB) in [0, 1]; masks are H x W, either
bool (a hole: True = remove) or float32 in [0, 1] (a blend weight). Conversion to
and from files and model tensors happens only at the edges (``io``, model stages).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import cv2
import numpy as np
from PIL import Image

T = TypeVar("T")

RESAMPLERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 array -> float32 in [0, 1]; float input is returned as float32."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / np.float32(255)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / np.float32(65535)
    return pixels.astype(np.float32, copy=False)


def luma(pixels: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of float RGB. Written out per channel rather than as a matrix
    product: BLAS may split the product across threads differently from call to
    call, and the last-bit differences would make fills irreproducible."""
    return (np.float32(0.299) * pixels[..., 0] + np.float32(0.587) * pixels[..., 1]
            + np.float32(0.114) * pixels[..., 2]).astype(np.float32, copy=False)


def gradient_magnitude(pixels: np.ndarray) -> np.ndarray:
    """Sobel (3x3) gradient magnitude of the luma of float RGB."""
    gray = luma(pixels)
    dx, dy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    return np.sqrt(dx * dx + dy * dy)  # not cv2.magnitude: its last bit varies from call to call


def quantize(pixels: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """float in [0, 1] -> uint8 / uint16, rounding to nearest.

    ``quantize(to_float(x), x.dtype)`` returns ``x`` exactly for every uint8 and
    uint16 value, which is what keeps untouched pixels bit-identical.
    """
    top = 255 if dtype == np.uint8 else 65535
    return np.rint(np.clip(pixels, 0.0, 1.0) * top).astype(dtype)


def resize(pixels: np.ndarray, size: tuple[int, int], method: str = "lanczos") -> np.ndarray:
    """Resize an H x W (x C) float array to ``size`` = (width, height).

    Uses Pillow's resamplers on float planes: unlike OpenCV's, they widen their
    kernel when shrinking, so downscales do not alias. Output is clipped to [0, 1].
    """
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}")
    if pixels.shape[1] == width and pixels.shape[0] == height:
        return pixels.astype(np.float32, copy=True)
    try:
        resample = RESAMPLERS[method]
    except KeyError:
        raise ValueError(f"unknown resize method {method!r}; choose from {sorted(RESAMPLERS)}") from None
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    out = np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32), mode="F")
                       .resize((width, height), resample))
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    out = np.clip(out, 0.0, 1.0)
    return out[..., 0] if pixels.ndim == 2 else out


def distance_outside(hole: np.ndarray) -> np.ndarray:
    """Euclidean distance (float32, pixels) of every pixel to the nearest hole pixel; 0 inside."""
    if not hole.any():
        return np.full(hole.shape, np.inf, dtype=np.float32)
    known = np.ascontiguousarray(~hole, dtype=np.uint8)
    return cv2.distanceTransform(known, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def grow(hole: np.ndarray, pixels: float) -> np.ndarray:
    """Dilate a bool mask by a disk of radius ``pixels`` (shrink it when negative)."""
    if pixels == 0 or not hole.any():
        return hole.copy()
    if pixels > 0:
        return distance_outside(hole) <= pixels
    return ~(distance_outside(~hole) <= -pixels)


def feather(hole: np.ndarray, grow_pixels: float, ramp_pixels: float) -> np.ndarray:
    """A soft mask: 1 on ``hole`` grown by ``grow_pixels``, a raised-cosine ramp down to
    exactly 0 over the next ``ramp_pixels``.

    The support is compact: every pixel farther than ``grow_pixels + ramp_pixels``
    from the hole is exactly 0, so a composite with it leaves those pixels untouched.
    """
    distance = distance_outside(hole)
    if ramp_pixels < 1e-3:  # a sub-pixel ramp is a hard edge (and avoids dividing by ~0)
        return (distance <= grow_pixels).astype(np.float32)
    t = np.clip((distance - grow_pixels) / ramp_pixels, 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def shrunk(pixels: np.ndarray, longest: int) -> np.ndarray:
    """``pixels`` scaled down (area averaging) so the long side is at most ``longest``;
    unchanged when it already is."""
    height, width = pixels.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)


def gaussian_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float mask (kernel of +-3 sigma, borders replicated)."""
    if sigma <= 0:
        return mask.astype(np.float32, copy=True)
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(mask.astype(np.float32), (k, k), sigma, borderType=cv2.BORDER_REPLICATE)


def fill_holes(hole: np.ndarray) -> np.ndarray:
    """Fill the enclosed gaps of a bool mask (a ring becomes a disk)."""
    outside = np.pad(~hole, 1, constant_values=True).astype(np.uint8)
    flood = outside.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    reachable = (flood == 2)[1:-1, 1:-1]
    return ~reachable


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, of the nonzero pixels; None when there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def composite(base: np.ndarray, overlay: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``weight * overlay + (1 - weight) * base``; where weight is 0 the base is copied as is.

    Only the box around the nonzero weights is blended: on a 24 MP photo with a small
    hole, the whole-image arithmetic took a second."""
    out = base.astype(np.float32)  # a copy: the result never aliases base
    box = bounding_box(weight)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    w = weight[y0:y1, x0:x1]
    w = w[..., None] if base.ndim == 3 and weight.ndim == 2 else w
    part = base[y0:y1, x0:x1]
    blended = part + w * (overlay[y0:y1, x0:x1] - part)
    np.copyto(blended, part, where=w == 0)
    out[y0:y1, x0:x1] = blended
    return out


def share_covered(regions: np.ndarray, pixels: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """float H x W: for each pixel of ``regions`` (bool), the share of its connected
    region (8-connected), or of the region's ``among`` pixels, that ``pixels`` cover;
    0 outside the regions."""
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    among = regions if among is None else among & regions
    area = np.bincount(labels[among], minlength=count)
    covered = np.bincount(labels[pixels & among], minlength=count)
    share = covered / np.maximum(area, 1)
    share[0] = 0.0
    return share[labels]


# OpenCV's random numbers (k-means seeds, GrabCut's models) come from a generator per
# thread. Seeded calls run in threads of clearfill's own, so they are repeatable and
# the caller's generator is never reseeded.
_SEEDED_THREADS = ThreadPoolExecutor(4, thread_name_prefix="clearfill-seeded-opencv")


def seeded_opencv(call: Callable[..., T], *args, **kwargs) -> T:
    """``call(*args, **kwargs)`` with OpenCV's random generator seeded to 0."""

    def seeded() -> T:
        cv2.setRNGSeed(0)
        return call(*args, **kwargs)

    return _SEEDED_THREADS.submit(seeded).result()
