"""Context crop, working size and stitch: the geometry every pipeline run relies on."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearfill import imaging
from clearfill.config import PRESETS
from clearfill.stages.crop import CropConfig, context_box, context_span, crop_context, crop_replicated
from clearfill.stages.resize import working_size
from clearfill.stages.stitch import stitch

REFERENCE_CROP = PRESETS["reference"].crop


@st.composite
def image_and_hole(draw):
    height = draw(st.integers(8, 300))
    width = draw(st.integers(8, 300))
    x0 = draw(st.integers(0, width - 1))
    y0 = draw(st.integers(0, height - 1))
    x1 = draw(st.integers(x0 + 1, width))
    y1 = draw(st.integers(y0 + 1, height))
    hole = np.zeros((height, width), bool)
    hole[y0:y1, x0:x1] = True
    # carve a random pattern inside the box so holes are not only rectangles
    seed = draw(st.integers(0, 2**16))
    hole &= np.random.default_rng(seed).random((height, width)) < 0.7
    hole[y0, x0] = True
    return hole


configs = st.builds(
    CropConfig,
    expand_pixels=st.integers(0, 128),
    expand_factor=st.floats(1.0, 2.5),
    padding=st.sampled_from([1, 8, 16, 32, 64]),
    mask_blur_pixels=st.floats(0, 16),
    blend_pixels=st.floats(0, 40),
)


@settings(max_examples=150, deadline=None)
@given(image_and_hole(), configs)
def test_context_box_contains_the_hole_is_padded_and_stays_inside_when_it_fits(hole, config):
    height, width = hole.shape
    x0, y0, x1, y1 = context_box(hole, config)
    ys, xs = np.nonzero(hole)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    for start, end, limit in ((x0, x1, width), (y0, y1, height)):
        side = end - start
        assert side % config.padding == 0
        if side <= limit:
            assert 0 <= start and end <= limit  # shifted inward, never off the image
        else:
            assert start <= 0 and end >= limit  # larger than the image: covers it, centred
            assert abs(-start - (end - limit)) <= 1


@settings(max_examples=100, deadline=None)
@given(image_and_hole(), configs, st.integers(0, 2**16))
def test_stitch_changes_nothing_outside_the_blend_mask_and_everything_in_the_hole(hole, config, seed):
    rng = np.random.default_rng(seed)
    image = rng.random(hole.shape + (3,), dtype=np.float32)
    removed = image.copy()
    removed[hole] = rng.random((int(hole.sum()), 3), dtype=np.float32)
    crop = crop_context(removed, hole, config)
    patch = rng.random(crop.image.shape, dtype=np.float32)  # whatever a refiner returned
    out = stitch(image, crop, patch)

    blend = np.zeros(hole.shape, np.float32)
    (rows, cols), (crop_rows, crop_cols) = crop.inside((hole.shape[1], hole.shape[0]))
    blend[rows, cols] = crop.blend_mask[crop_rows, crop_cols]
    assert np.array_equal(out[blend == 0], image[blend == 0])  # bit-identical outside
    # ... and "outside" by geometry, not by the code's own mask: a feather whose tail never
    # reaches 0 would pass the line above
    far = imaging.distance_outside(hole) > config.seam_reach
    assert np.array_equal(out[far], image[far])
    assert np.all(blend[hole] == 1.0)  # the whole hole is replaced, no fringe of the object left
    inside_patch = np.zeros(hole.shape + (3,), np.float32)
    inside_patch[rows, cols] = patch[crop_rows, crop_cols]
    assert np.array_equal(out[hole], inside_patch[hole])


def test_reference_crop_of_the_seed_example_geometry_is_640x512():
    # The seed example's mask bounding box is 435 x 300 (see ../shared/seed-example);
    # the reference crop node turned it into a 640 x 512 crop.
    hole = np.zeros((736, 736), bool)
    hole[212:512, 79:514] = True
    x0, y0, x1, y1 = context_box(hole, REFERENCE_CROP)
    assert (x1 - x0, y1 - y0) == (640, 512)


def test_context_span_by_hand():
    config = CropConfig(expand_pixels=10, expand_factor=1.0, padding=8, mask_blur_pixels=0, blend_pixels=0)
    # 20 px hole at 50..70 on a 200 px axis: 20 + 10 = 30 -> padded to 32, centred on 60
    assert context_span(50, 70, 200, config) == (44, 76)
    # at the left border the span is shifted inward, not cut
    assert context_span(0, 20, 200, config) == (0, 32)
    # at the right border too
    assert context_span(190, 200, 200, config) == (176, 200)
    # longer than the axis: centred, overhanging both ends
    assert context_span(0, 20, 24, config) == (-4, 28)


def test_crop_replicates_edges_only_outside_the_image():
    pixels = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = crop_replicated(pixels, (-1, -1, 5, 4))
    assert out.shape == (5, 6)
    assert np.array_equal(out[1:4, 1:5], pixels)
    assert np.array_equal(out[0, 1:5], pixels[0]) and np.array_equal(out[:, 0][1:4], pixels[:, 0])


def test_hole_touching_every_border_and_larger_than_half_the_image():
    rng = np.random.default_rng(7)
    hole = np.zeros((120, 90), bool)
    hole[0:80, 0:90] = True  # touches top, left and right; 2/3 of the image
    hole[119, 45] = True  # and the bottom
    image = rng.random((120, 90, 3), dtype=np.float32)
    crop = crop_context(image, hole, REFERENCE_CROP)
    x0, y0, x1, y1 = crop.box
    assert x0 < 0 and x1 > 90 and y0 < 0 and y1 > 120  # larger than the image: replicated
    assert (x1 - x0) % 64 == 0 and (y1 - y0) % 64 == 0
    out = stitch(image, crop, np.zeros_like(crop.image))
    assert np.all(out[hole] == 0)


@pytest.mark.parametrize("size, expected", [((640, 512), (1088, 896)), ((1024, 1024), (1024, 1024)),
                                            ((64, 64), (1024, 1024)), ((5000, 100), (7232, 128))])
def test_working_size_is_about_a_megapixel_in_multiples_of_64(size, expected):
    assert working_size(size, 1024 * 1024, 64) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.sampled_from([16, 64]))
def test_working_size_properties(width, height, multiple):
    w, h = working_size((width, height), 1024 * 1024, multiple)
    assert w % multiple == 0 and h % multiple == 0 and w >= multiple and h >= multiple
    assert w * h <= 1024 * 1024 or min(w, h) == multiple  # never above the target unless a side is at its floor
    if min(width, height) * (1024 * 1024 / (width * height)) ** 0.5 >= 4 * multiple:
        assert abs((w / h) / (width / height) - 1) < 0.35  # aspect kept up to the rounding


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 64), st.floats(0, 12), st.integers(1, 40))
def test_the_crop_reaches_past_everything_the_stitch_may_change(mask_blur, blend, hole_side):
    """The stitch changes pixels up to ``seam_reach`` outside the hole: the crop must
    hold all of them (its margin has a seam term for when that reach is the widest)."""
    config = CropConfig(expand_pixels=0, expand_factor=1.0, padding=1, mask_blur_pixels=mask_blur,
                        blend_pixels=blend)
    hole = np.zeros((600, 600), bool)
    hole[300:300 + hole_side, 280:280 + hole_side] = True
    x0, y0, x1, y1 = context_box(hole, config)
    reach = config.seam_reach
    assert x0 <= 280 - reach and x1 >= 280 + hole_side + reach
    assert y0 <= 300 - reach and y1 >= 300 + hole_side + reach
