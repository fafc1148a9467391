"""PatchMatch nearest-neighbour fields and patch voting, compiled with numba.

Conventions: ``image`` is float32 H x W x C; a nearest-neighbour field (NNF) is a
pair of int32 H x W arrays giving, for each target patch centre, the centre of
the source patch that matches it (-1 where the pixel is not a target); patches
are squares of side 2r+1. Sources are centres whose whole patch is known.

Barnes et al. 2009, "PatchMatch: a randomized correspondence algorithm for
structural image editing"; voting as in Wexler et al. 2007, "Space-time
completion of video".
"""

from __future__ import annotations

import numpy as np

from . import kernel

INF = np.float32(3.0e38)


@kernel
def patch_distance(image, weight, priors, ty, tx, sy, sx, r, cutoff):
    """Weighted SSD between the patches centred at (ty, tx) and (sy, sx), plus two
    priors; stops early once over ``cutoff``.

    ``weight`` weighs each target pixel. ``priors`` is (contrast map, contrast
    weight, locality weight). The contrast term penalises a difference in local
    contrast: it counters SSD's bias towards flat patches (against a textured
    estimate a flat source has the smaller expected SSD, as it sits at the mean,
    and choosing it round after round would wash the texture out of the fill).
    The locality term grows with the squared offset between the patches (in
    units of the image diagonal): of two similar sources, the nearer is the
    likelier continuation of what the hole hid.
    """
    contrast, contrast_weight, locality = priors
    side = 2 * r + 1
    dc = contrast[ty, tx] - contrast[sy, sx]
    oy, ox = ty - sy, tx - sx
    total = np.float32(side * side * (contrast_weight * dc * dc + locality * (oy * oy + ox * ox)))
    channels = image.shape[2]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            w = weight[ty + dy, tx + dx]
            if w == 0.0:
                continue
            acc = np.float32(0.0)
            for c in range(channels):
                d = image[ty + dy, tx + dx, c] - image[sy + dy, sx + dx, c]
                acc += d * d
            total += w * acc
        if total > cutoff:
            return total
    return total


@kernel
def _try(image, weight, priors, valid, ty, tx, sy, sx, r, nnf_y, nnf_x, dist):
    if sy < 0 or sx < 0 or sy >= valid.shape[0] or sx >= valid.shape[1] or not valid[sy, sx]:
        return
    if sy == nnf_y[ty, tx] and sx == nnf_x[ty, tx]:
        return
    d = patch_distance(image, weight, priors, ty, tx, sy, sx, r, dist[ty, tx])
    if d < dist[ty, tx]:
        dist[ty, tx] = d
        nnf_y[ty, tx] = sy
        nnf_x[ty, tx] = sx


@kernel
def refresh_distances(image, weight, priors, targets_y, targets_x, nnf_y, nnf_x, dist, r):
    for i in range(targets_y.shape[0]):
        ty, tx = targets_y[i], targets_x[i]
        dist[ty, tx] = patch_distance(image, weight, priors, ty, tx, nnf_y[ty, tx], nnf_x[ty, tx], r, INF)


@kernel
def patchmatch(image, weight, priors, valid, valid_y, valid_x, targets_y, targets_x, is_target,
               nnf_y, nnf_x, dist, r, iterations, search_radius, explore, seed):
    """Improve the NNF of every target in place: alternating-scan propagation from
    neighbours, then random search in shrinking windows around the current match
    (plus, when ``explore``, one uniformly random source per target, which escapes
    local minima but breaks coherence: use it where the field is still rough)."""
    np.random.seed(seed)
    n = targets_y.shape[0]
    n_valid = valid_y.shape[0]
    refresh_distances(image, weight, priors, targets_y, targets_x, nnf_y, nnf_x, dist, r)
    for it in range(iterations):
        forward = it % 2 == 0
        step = 1 if forward else -1
        for k in range(n):
            i = k if forward else n - 1 - k
            ty, tx = targets_y[i], targets_x[i]
            # propagation: the neighbour's match, shifted by one
            ny, nx = ty, tx - step
            if is_target[ny, nx]:
                _try(image, weight, priors, valid, ty, tx, nnf_y[ny, nx], nnf_x[ny, nx] + step, r, nnf_y, nnf_x, dist)
            ny, nx = ty - step, tx
            if is_target[ny, nx]:
                _try(image, weight, priors, valid, ty, tx, nnf_y[ny, nx] + step, nnf_x[ny, nx], r, nnf_y, nnf_x, dist)
            # random search around the current best
            radius = search_radius
            while radius >= 1:
                sy = nnf_y[ty, tx] + np.random.randint(-radius, radius + 1)
                sx = nnf_x[ty, tx] + np.random.randint(-radius, radius + 1)
                _try(image, weight, priors, valid, ty, tx, sy, sx, r, nnf_y, nnf_x, dist)
                radius //= 2
            if explore:
                j = np.random.randint(0, n_valid)
                _try(image, weight, priors, valid, ty, tx, valid_y[j], valid_x[j], r, nnf_y, nnf_x, dist)


@kernel
def random_field(valid_y, valid_x, targets_y, targets_x, nnf_y, nnf_x, seed):
    np.random.seed(seed)
    for i in range(targets_y.shape[0]):
        j = np.random.randint(0, valid_y.shape[0])
        nnf_y[targets_y[i], targets_x[i]] = valid_y[j]
        nnf_x[targets_y[i], targets_x[i]] = valid_x[j]


@kernel
def upsample_field(coarse_y, coarse_x, valid, valid_y, valid_x, targets_y, targets_x, nnf_y, nnf_x, seed):
    """Initialise a fine NNF from the coarse one: each target inherits its parent's
    match, doubled, plus its own offset within the parent; random where that is not
    a valid source."""
    np.random.seed(seed)
    ch, cw = coarse_y.shape
    for i in range(targets_y.shape[0]):
        ty, tx = targets_y[i], targets_x[i]
        py, px = min(ty // 2, ch - 1), min(tx // 2, cw - 1)
        sy, sx = -1, -1
        if coarse_y[py, px] >= 0:
            sy = 2 * coarse_y[py, px] + (ty - 2 * py)
            sx = 2 * coarse_x[py, px] + (tx - 2 * px)
        if sy < 0 or sx < 0 or sy >= valid.shape[0] or sx >= valid.shape[1] or not valid[sy, sx]:
            j = np.random.randint(0, valid_y.shape[0])
            sy, sx = valid_y[j], valid_x[j]
        nnf_y[ty, tx] = sy
        nnf_x[ty, tx] = sx


@kernel
def vote(image, hole, targets_y, targets_x, nnf_y, nnf_x, dist, confidence, r, sigma2, out):
    """Every hole pixel becomes the weighted mean of what the source patches of all
    target patches covering it say it should be. A patch's weight is its similarity
    exp(-d / 2 sigma^2) times the confidence at its centre (near the known border:
    high), so well-anchored patches dominate."""
    h, w, channels = image.shape
    acc = np.zeros((h, w, channels), dtype=np.float32)
    total = np.zeros((h, w), dtype=np.float32)
    for i in range(targets_y.shape[0]):
        ty, tx = targets_y[i], targets_x[i]
        sy, sx = nnf_y[ty, tx], nnf_x[ty, tx]
        wt = confidence[ty, tx] * np.exp(-dist[ty, tx] / (2.0 * sigma2))
        if wt < 1e-12:
            wt = 1e-12
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                qy, qx = ty + dy, tx + dx
                if hole[qy, qx]:
                    total[qy, qx] += wt
                    for c in range(channels):
                        acc[qy, qx, c] += wt * image[sy + dy, sx + dx, c]
    for y in range(h):
        for x in range(w):
            if hole[y, x] and total[y, x] > 0:
                for c in range(channels):
                    out[y, x, c] = acc[y, x, c] / total[y, x]


@kernel
def vote_best(image, hole, targets_y, targets_x, nnf_y, nnf_x, dist, confidence, r, sigma2, out):
    """Like ``vote``, but each hole pixel takes the value of its single best-weighted
    covering patch instead of the mean: no averaging, so texture keeps its sharpness."""
    h, w, channels = image.shape
    best = np.full((h, w), -1.0, dtype=np.float32)
    src_y = np.zeros((h, w), dtype=np.int32)
    src_x = np.zeros((h, w), dtype=np.int32)
    for i in range(targets_y.shape[0]):
        ty, tx = targets_y[i], targets_x[i]
        wt = confidence[ty, tx] * np.exp(-dist[ty, tx] / (2.0 * sigma2))
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                qy, qx = ty + dy, tx + dx
                if hole[qy, qx] and wt > best[qy, qx]:
                    best[qy, qx] = wt
                    src_y[qy, qx] = nnf_y[ty, tx] + dy
                    src_x[qy, qx] = nnf_x[ty, tx] + dx
    for y in range(h):
        for x in range(w):
            if hole[y, x] and best[y, x] >= 0:
                for c in range(channels):
                    out[y, x, c] = image[src_y[y, x], src_x[y, x], c]
