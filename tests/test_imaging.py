import numpy as np
import pytest

from clearfill import imaging


def test_quantize_round_trips_every_uint8_and_uint16_value():
    u8 = np.arange(256, dtype=np.uint8)
    assert np.array_equal(imaging.quantize(imaging.to_float(u8), np.uint8), u8)
    u16 = np.arange(65536, dtype=np.uint16)
    assert np.array_equal(imaging.quantize(imaging.to_float(u16), np.uint16), u16)


def test_feather_is_one_on_the_grown_hole_and_exactly_zero_beyond_its_reach():
    hole = np.zeros((41, 41), bool)
    hole[20, 20] = True
    soft = imaging.feather(hole, grow_pixels=3, ramp_pixels=5)
    assert soft[20, 20] == 1.0
    assert soft[20, 23] == 1.0  # distance 3: inside the grown hole
    assert 0 < soft[20, 25] < 1  # distance 5: on the ramp
    assert soft[20, 28] == 0.0 and soft[20, 29] == 0.0  # distance >= 8: untouched
    # monotone along a ray
    ray = soft[20, 20:35]
    assert np.all(np.diff(ray) <= 0)


def test_grow_and_shrink_by_distance():
    hole = np.zeros((21, 21), bool)
    hole[10, 10] = True
    assert imaging.grow(hole, 2).sum() == 13  # the disk of radius 2 on the pixel grid
    assert imaging.grow(imaging.grow(hole, 4), -4)[10, 10]


def test_fill_holes_closes_a_ring_but_not_an_open_arc():
    ring = np.zeros((30, 30), bool)
    ring[5:25, 5:25] = True
    ring[8:22, 8:22] = False
    assert imaging.fill_holes(ring)[15, 15]
    opened = ring.copy()
    opened[8:22, 5:8] = False  # cut the left side: the inside now reaches the border
    assert not imaging.fill_holes(opened)[15, 15]


def test_bounding_box_is_end_exclusive():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert imaging.bounding_box(mask) == (3, 2, 9, 5)
    assert imaging.bounding_box(np.zeros((4, 4), bool)) is None


@pytest.mark.parametrize("size", [(7, 5), (640, 512), (3, 1)])
def test_resize_gives_the_requested_size_and_stays_in_range(size, rng):
    picture = rng.random((33, 47, 3), dtype=np.float32)
    out = imaging.resize(picture, size, "lanczos")
    assert out.shape == (size[1], size[0], 3)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_resize_keeps_a_constant_image_constant():
    flat = np.full((20, 30, 3), 0.25, np.float32)
    assert np.allclose(imaging.resize(flat, (61, 17)), 0.25, atol=1e-5)


def test_composite_copies_the_base_where_weight_is_zero(rng):
    base = rng.random((8, 8, 3), dtype=np.float32)
    over = rng.random((8, 8, 3), dtype=np.float32)
    weight = np.zeros((8, 8), np.float32)
    weight[2:4, 2:4] = 1.0
    weight[5, 5] = 0.5
    out = imaging.composite(base, over, weight)
    assert np.array_equal(out[weight == 0], base[weight == 0])
    assert np.array_equal(out[2:4, 2:4], over[2:4, 2:4])
    assert np.allclose(out[5, 5], (base[5, 5] + over[5, 5]) / 2)


def test_composite_blends_only_inside_the_weights_box_and_matches_the_formula_everywhere():
    rng = np.random.default_rng(3)
    base, overlay = rng.random((90, 120, 3), dtype=np.float32), rng.random((90, 120, 3), dtype=np.float32)
    weight = np.zeros((90, 120), np.float32)
    weight[20:50, 70:100] = rng.random((30, 30), dtype=np.float32)
    weight[30:35, 80:85] = 0.0  # zeros inside the box stay the base, exactly
    out = imaging.composite(base, overlay, weight)
    expected = base + weight[..., None] * (overlay - base)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    untouched = weight == 0
    assert np.array_equal(out[untouched], base[untouched]) and out is not base
    assert np.array_equal(imaging.composite(base, overlay, np.zeros_like(weight)), base)
