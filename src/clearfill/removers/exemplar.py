"""Exemplar fill: multi-scale PatchMatch synthesis that copies real texture from
the image into the hole, with no weights.

Coarse to fine (Wexler et al. 2007 with Barnes et al.'s PatchMatch): the coarsest
level starts from a smooth Navier-Stokes fill, so large structures (horizons,
edges) continue through the hole; each level then alternates a nearest-neighbour
search (patches overlapping the hole against patches fully outside it) with a
vote that rebuilds every hole pixel from the matched patches; the result seeds
the next finer level. Only a region around the hole is searched, at a capped
resolution, so a 12-MP photo with a small mask costs about what a 1-MP one does.

The synthesis alone is textured but unfaithful (it invents content and its seam
shows); diffusion is faithful but blurred. ``ExemplarFill.fill`` layers them: see
its docstring, and benchmarks/README.md for what each part is worth on real photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .. import imaging
from ..options import check_range
from .base import register
from .opencv import DiffusionFill, DiffusionFillConfig


@dataclass(frozen=True)
class ExemplarConfig:
    patch_size: int = 7  # side of the square patches (odd)
    em_iterations: int = 3  # search + vote rounds at the finest level (coarser levels do more)
    pm_iterations: int = 2  # PatchMatch sweeps per round
    max_size: int = 768  # the work region's long side is downscaled to at most this
    margin: float = 1.0  # source region: the hole's box grown by this times its size on each side
    min_margin: int = 48  # ... and by at least this many pixels
    coarsest_size: int = 40  # the pyramid stops before the short side falls under this
    refine_radius: int = 8  # search window (pixels) around inherited matches on finer levels
    structure_sigma: float = 8.0  # scale (Gaussian sigma) that splits coarse structure from detail
    structure_mix: float = 0.3  # share of the exemplar in the coarse structure (the rest: smooth fill)
    fine_sigma: float = 2.0  # the exemplar's detail finer than this scale is kept whole...
    mid_detail: float = 0.3  # ... and this share of its detail between fine_sigma and structure_sigma
    texture_sigma: float = 24.0  # scale over which the fill's texture strength is matched to its surroundings
    gain_limit: float = 2.0  # the detail is amplified or attenuated by at most this factor
    border_keep: int = 3  # hole pixels this close to the border (chessboard distance) keep the smooth fill
    border_taper: float = 4.0  # ... and the exemplar's part fades in over this many pixels beyond them
    contrast_weight: float = 2.0  # penalty on local-contrast difference between matched patches
    locality_weight: float = 1.0  # penalty on the squared offset between matched patches (image diagonal = 1)
    hole_weight: float = 0.7  # weight of (estimated) hole pixels in patch distances; known pixels weigh 1
    confidence_decay: float = 1.3  # vote weight falls as decay ** -(distance from the known border)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patch_size < 3 or self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd and >= 3, got {self.patch_size}")
        if self.em_iterations < 1 or self.pm_iterations < 1:
            raise ValueError("em_iterations and pm_iterations must be >= 1")
        check_range("patch_size", self.patch_size, 3, 63)
        check_range("max_size", self.max_size, 4 * self.patch_size, 8192)
        check_range("em_iterations", self.em_iterations, 1, 100)
        check_range("pm_iterations", self.pm_iterations, 1, 100)
        if self.gain_limit < 1:
            raise ValueError(f"gain_limit must be >= 1, got {self.gain_limit}")
        if self.border_keep < 0 or self.border_taper < 0:
            raise ValueError("border_keep and border_taper must be >= 0")


def source_region(hole: np.ndarray, config: ExemplarConfig) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the hole's bounding box grown by the margin, clipped to the image."""
    x0, y0, x1, y1 = imaging.bounding_box(hole)
    height, width = hole.shape
    grow_x = max(config.min_margin, round(config.margin * (x1 - x0)))
    grow_y = max(config.min_margin, round(config.margin * (y1 - y0)))
    return max(0, x0 - grow_x), max(0, y0 - grow_y), min(width, x1 + grow_x), min(height, y1 + grow_y)


def downsample(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-size level: averages of known pixels only; a pixel is hole if any child is."""
    size = (max(1, image.shape[1] // 2), max(1, image.shape[0] // 2))
    known = (~hole).astype(np.float32)
    weight = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    summed = cv2.resize(image * known[..., None], size, interpolation=cv2.INTER_AREA)
    small = summed / np.maximum(weight, 1e-6)[..., None]
    return small.astype(np.float32), weight < 0.999


def pyramid_depth(hole: np.ndarray, config: ExemplarConfig) -> int:
    """Levels so that the hole's inscribed radius shrinks to about a patch at the
    coarsest level, without the image getting smaller than ``coarsest_size``."""
    radius = float(imaging.distance_outside(~hole).max())
    wanted = max(1, math.ceil(math.log2(max(radius, 1.0) / (config.patch_size / 2))) + 1)
    allowed = max(1, int(math.log2(min(hole.shape) / config.coarsest_size)) + 1)
    return min(wanted, allowed)


class ExemplarFill:
    def __init__(self, config: ExemplarConfig):
        self.config = config

    def __call__(self, image: np.ndarray, hole: np.ndarray, progress=None) -> np.ndarray:
        """Reports ``progress(done, total)`` after each search-and-vote round of the synthesis."""
        out = image.copy()
        if not hole.any():
            return out
        x0, y0, x1, y1 = source_region(hole, self.config)
        region, region_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
        scale = min(1.0, self.config.max_size / max(region.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
            small_hole = imaging.resize(region_hole.astype(np.float32), size, "bilinear") > 0.01
            small = imaging.resize(region, size, "box")
            filled = imaging.resize(self.fill(small, small_hole, progress), (region.shape[1], region.shape[0]),
                                    "bicubic")
            filled = self.rejoin_border(region, region_hole, filled)
        else:
            filled = self.fill(region, region_hole, progress)
        out[y0:y1, x0:x1][region_hole] = filled[region_hole]
        return out

    def rejoin_border(self, image: np.ndarray, hole: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Redo the hole's border band at full resolution after an upsampled fill.

        Upsampling blurs the fill's border into the known pixels' scale, and the
        seam shows. The band (``border_keep + border_taper`` pixels deep) is filled
        again by diffusion between the known pixels on one side and the upsampled
        fill on the other, then faded into the fill as ``fill`` does.
        """
        cfg = self.config
        filled = np.where(hole[..., None], filled, image).astype(np.float32)
        band = hole & (chessboard_depth(hole) <= cfg.border_keep + cfg.border_taper)
        joined = smooth_fill(filled, band)
        fade = border_fade(hole, cfg.border_keep, cfg.border_taper)[..., None]
        return joined + fade * (filled - joined)

    def fill(self, image: np.ndarray, hole: np.ndarray, progress=None) -> np.ndarray:
        """Structure mostly from the smooth fill, texture from the exemplar synthesis.

        Diffusion is the most faithful guess of the hole's coarse content and of the
        pixels at its border, but has no texture; the exemplar synthesis has real
        texture but drifts from the true coarse content. So the result is built in
        layers: the smooth fill's coarse layer (Gaussian of ``structure_sigma``)
        nudged by ``structure_mix`` towards the exemplar's (two independent guesses
        average to a better one); plus the exemplar's detail, finest scales whole and
        middle scales in part (fine detail carries the most texture for the least
        departure from the truth), scaled so that the texture is as strong as in
        the known pixels around each part of the hole; all of it kept out of the
        first ``border_keep`` pixels, where continuity with the known side matters
        most and diffusion gives it.
        """
        cfg = self.config
        smooth = smooth_fill(image, hole)
        textured = self.synthesize(image, hole, progress)
        smooth_coarse, textured_coarse = lowpass(smooth, cfg.structure_sigma), lowpass(textured, cfg.structure_sigma)
        structure = smooth_coarse + cfg.structure_mix * (textured_coarse - smooth_coarse)
        textured_mid = lowpass(textured, cfg.fine_sigma)
        detail = (textured - textured_mid) + cfg.mid_detail * (textured_mid - textured_coarse)
        fade = border_fade(hole, cfg.border_keep, cfg.border_taper)[..., None]

        def compose(gain: np.ndarray) -> np.ndarray:
            out = smooth + fade * (structure + gain[..., None] * detail - smooth)
            out[~hole] = image[~hole]
            return np.clip(out, 0.0, 1.0)

        gain = texture_gain(image, hole, compose, cfg.texture_sigma, cfg.gain_limit)
        return compose(gain)

    def synthesize(self, image: np.ndarray, hole: np.ndarray, progress=None) -> np.ndarray:
        """Fill ``hole`` in ``image`` (float32 RGB) coarse to fine; returns a new image."""
        cfg = self.config
        r = cfg.patch_size // 2
        levels = [(image, hole)]
        for _ in range(pyramid_depth(hole, cfg) - 1):
            levels.append(downsample(*levels[-1]))
        rounds_at = [cfg.em_iterations + min(depth, 3) for depth in range(len(levels))]  # coarse levels are cheap
        tick = _Rounds(progress, sum(rounds_at))

        coarse_img, coarse_hole = levels[-1]
        estimate = textured_smooth_fill(coarse_img, coarse_hole, cfg.seed)
        nnf = None
        for depth in range(len(levels) - 1, -1, -1):
            level_img, level_hole = levels[depth]
            if depth != len(levels) - 1:
                size = (level_img.shape[1], level_img.shape[0])
                upsampled = cv2.resize(estimate, size, interpolation=cv2.INTER_LINEAR)
                estimate = level_img.copy()
                estimate[level_hole] = upsampled[level_hole]
            estimate, nnf = self._level(estimate, level_hole, r, rounds_at[depth], nnf, seed=cfg.seed + 7919 * depth,
                                        sharp=depth == 0, tick=tick)
            tick.level_done(rounds_at[depth])
            if estimate is None:  # no usable source patch at this level: keep the smooth fill
                estimate = smooth_fill(level_img, level_hole)
                nnf = None
        return estimate

    def _level(self, estimate, hole, r, rounds, coarse_nnf, seed, sharp=False, tick=None):
        from ..synthesis import patchmatch as pm  # compiled on first use: `import clearfill` stays light

        cfg = self.config
        height, width = hole.shape
        if height < 2 * r + 2 or width < 2 * r + 2:
            return None, None
        known = ~hole
        interior = np.zeros_like(hole)
        interior[r:height - r, r:width - r] = True
        kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        valid = cv2.erode(known.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        valid &= interior
        is_target = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & interior
        if not valid.any() or not is_target.any():
            return None, None
        valid_y, valid_x = (a.astype(np.int32) for a in np.nonzero(valid))
        targets_y, targets_x = (a.astype(np.int32) for a in np.nonzero(is_target))

        weight = np.where(hole, np.float32(cfg.hole_weight), np.float32(1.0)).astype(np.float32)
        depth_in_hole = imaging.distance_outside(known)
        locality = np.float32(cfg.locality_weight / (height * height + width * width))

        def priors(estimate):
            return local_contrast(estimate, r), np.float32(cfg.contrast_weight), locality

        confidence = np.power(np.float32(cfg.confidence_decay), -depth_in_hole).astype(np.float32)

        nnf_y = np.full((height, width), -1, np.int32)
        nnf_x = np.full((height, width), -1, np.int32)
        dist = np.full((height, width), pm.INF, np.float32)
        if coarse_nnf is None:
            pm.random_field(valid_y, valid_x, targets_y, targets_x, nnf_y, nnf_x, seed)
        estimate = np.ascontiguousarray(estimate, dtype=np.float32)
        if coarse_nnf is not None:
            # Rebuild the hole from the inherited matches first: upsampling the coarse
            # image instead would hand the search a blurred estimate, and blur matches blur.
            pm.upsample_field(coarse_nnf[0], coarse_nnf[1], valid, valid_y, valid_x, targets_y, targets_x,
                              nnf_y, nnf_x, seed)
            pm.refresh_distances(estimate, weight, priors(estimate), targets_y, targets_x, nnf_y, nnf_x, dist, r)
            sigma2 = max(float(np.percentile(dist[is_target], 75)), 1e-6)
            pm.vote(estimate, hole, targets_y, targets_x, nnf_y, nnf_x, dist, confidence, r, sigma2, estimate)
        # The coarsest level searches everywhere; finer ones refine the inherited field
        # locally, so neighbouring patches stay coherent and the vote stays sharp.
        inherited = coarse_nnf is not None
        search_radius = cfg.refine_radius if inherited else max(height, width) // 2
        for i in range(rounds):
            pm.patchmatch(estimate, weight, priors(estimate), valid, valid_y, valid_x, targets_y, targets_x, is_target,
                          nnf_y, nnf_x, dist, r, cfg.pm_iterations, search_radius, not inherited, seed + 101 * i)
            sigma2 = max(float(np.percentile(dist[is_target], 75)), 1e-6)
            pm.vote_best(estimate, hole, targets_y, targets_x, nnf_y, nnf_x, dist, confidence, r, sigma2, estimate)
            if tick is not None:
                tick()
        return estimate, (nnf_y, nnf_x)


class _Rounds:
    """Counts the synthesis' rounds for ``progress(done, total)``; a level that runs fewer
    (too small to search) is counted whole when it ends."""

    def __init__(self, progress, total: int):
        self.progress, self.total, self.done, self.counted = progress, total, 0, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def level_done(self, rounds: int) -> None:
        """A level's ``rounds`` are over, run or not."""
        self.counted += rounds
        if self.done < self.counted:
            self.done = self.counted - 1
            self()


def textured_smooth_fill(image: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
    """The smooth fill plus noise as strong as the known region's fine detail. A
    purely smooth estimate would match only the image's smoothest patches, and the
    fill would stay smooth at every level; the noise makes texture the likelier match
    while the smooth fill keeps the structure."""
    out = smooth_fill(image, hole)
    known = ~hole
    detail = image - cv2.GaussianBlur(image, (0, 0), 1.0)
    spread = detail[known].std(axis=0) if known.any() else np.zeros(image.shape[2], np.float32)
    noise = np.random.default_rng(seed).normal(0.0, 1.0, image.shape).astype(np.float32) * spread
    out[hole] += noise[hole]
    return np.clip(out, 0.0, 1.0)


def local_contrast(image: np.ndarray, r: int) -> np.ndarray:
    """Standard deviation of the luma over each (2r+1)^2 window, times sqrt(3) so it
    is on the scale of the 3-channel SSD per pixel."""
    luma = imaging.luma(image)
    size = (2 * r + 1, 2 * r + 1)
    mean = cv2.boxFilter(luma, -1, size, borderType=cv2.BORDER_REFLECT)
    mean_sq = cv2.boxFilter(luma * luma, -1, size, borderType=cv2.BORDER_REFLECT)
    return (np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)) * np.sqrt(3.0)).astype(np.float32)


def lowpass(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else np.zeros_like(image)


def border_fade(hole: np.ndarray, keep: int, taper: float) -> np.ndarray:
    """0 on the hole's first ``keep`` pixels (chessboard distance from the known
    side), rising to 1 over the next ``taper``; 0 outside the hole."""
    return np.clip((chessboard_depth(hole) - keep) / max(taper, 1e-3), 0.0, 1.0).astype(np.float32)


def chessboard_depth(hole: np.ndarray) -> np.ndarray:
    """Steps (8-neighbour) from each hole pixel to the known side: 1 on the hole's outer ring."""
    return cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_C, 3)


def local_mean(values: np.ndarray, where: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of ``values`` over the pixels in ``where`` around every
    pixel (normalised convolution); far from any such pixel it tends to the nearest ones'."""
    weight = where.astype(np.float32)
    total = cv2.GaussianBlur(values * weight, (0, 0), sigma)
    return total / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-6)


def texture_gain(image: np.ndarray, hole: np.ndarray, compose, sigma: float, limit: float,
                 iterations: int = 4) -> np.ndarray:
    """A smooth per-pixel factor on the exemplar's detail so that the fill's local
    gradient strength matches that of the known pixels nearby.

    The synthesis may copy flatter or busier patches than the hole's surroundings
    hold; the surroundings are the best evidence of how textured the hole was.
    ``compose(gain)`` renders the fill for a gain map; the gain is refined by fixed
    point (the fill's gradients are not linear in it where structure and detail
    overlap). Gradients are measured only on known pixels whose 3x3 neighbourhood
    is known, so the zeroed or guessed hole never leaks into the target.
    """
    known_core = cv2.erode((~hole).astype(np.uint8), np.ones((3, 3), np.uint8),
                           borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)
    gain = np.ones(hole.shape, np.float32)
    if not known_core.any():
        return gain
    wanted = local_mean(imaging.gradient_magnitude(image), known_core, sigma)
    for _ in range(iterations):
        have = local_mean(imaging.gradient_magnitude(compose(gain)), hole, sigma)
        gain = np.clip(gain * wanted / np.maximum(have, 1e-4), 1.0 / limit, limit)
    return gain


def smooth_fill(image: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """Navier-Stokes fill: the border and structure of the result, and the coarsest level's start."""
    filled = DiffusionFill(cv2.INPAINT_NS, DiffusionFillConfig(radius))(image, hole)
    out = image.copy()
    out[hole] = filled[hole]
    return out


@register("exemplar", config=ExemplarConfig, auto_rank=20,
          summary="multi-scale PatchMatch exemplar fill: real texture from the image, no weights")
def exemplar(config: ExemplarConfig, device: str = "auto") -> ExemplarFill:
    return ExemplarFill(config)
