import math

import numpy as np
import pytest

from clearfill.config import PRESETS
from clearfill.stages.mask_prep import MaskPrepConfig, prepare_hole


def test_threshold_and_invert():
    mask = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    assert prepare_hole(mask, MaskPrepConfig()).tolist() == [[False, False, True, True]]
    assert prepare_hole(mask, MaskPrepConfig(invert=True)).tolist() == [[True, True, False, False]]
    assert prepare_hole(mask, MaskPrepConfig(threshold=180 / 255)).tolist() == [[False, False, False, True]]


def test_fill_holes_option():
    ring = np.zeros((20, 20), np.float32)
    ring[4:16, 4:16] = 1
    ring[7:13, 7:13] = 0
    assert not prepare_hole(ring, MaskPrepConfig())[10, 10]
    assert prepare_hole(ring, MaskPrepConfig(fill_holes=True))[10, 10]


def test_reference_blur_grows_a_straight_edge_by_about_six_pixels():
    # A half-plane hole blurred with sigma 11 reaches 1 - 180/255 = 0.294 where
    # 1 - Phi(d / 11) = 0.294, i.e. d = 11 * 0.542 = 5.96 px outside the edge.
    mask = np.zeros((64, 200), np.float32)
    mask[:, :100] = 1
    hole = prepare_hole(mask, PRESETS["reference"].mask)
    grown = int(hole[32].sum()) - 100
    expected = 11 * 0.5418
    assert abs(grown - expected) <= 1.0, grown


def test_blur_growth_never_drops_a_thin_stroke():
    # A 2-px stroke blurred with sigma 11 peaks far below the threshold; the
    # reference node would lose it, we keep the user's stroke.
    mask = np.zeros((64, 64), np.float32)
    mask[:, 31:33] = 1
    hole = prepare_hole(mask, PRESETS["reference"].mask)
    assert hole[:, 31:33].all()


def test_grow_pixels_dilates_by_a_disk():
    mask = np.zeros((31, 31), np.float32)
    mask[15, 15] = 1
    hole = prepare_hole(mask, MaskPrepConfig(grow_pixels=3))
    assert hole[15, 18] and not hole[15, 19] and hole[17, 17] and not hole[18, 18]
    assert hole.sum() == sum(1 for y in range(-3, 4) for x in range(-3, 4) if math.hypot(x, y) <= 3)


@pytest.mark.parametrize("bad", [dict(threshold=0.0), dict(threshold=1.5), dict(blur_radius=-1)])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        MaskPrepConfig(**bad)


def test_growth_never_takes_back_pixels_recovered_from_under_a_mark():
    """A speck the unblend stage left to the fill is grown like any hole, but not into
    the pixels around it that undoing a semi-transparent mark already recovered."""
    from clearfill.pipeline import State
    from clearfill.stages.mask_prep import MaskPrepStage

    mask = np.zeros((40, 40), np.float32)
    mask[20, 20] = 1  # left to the fill
    unblended = np.zeros((40, 40), bool)
    unblended[15:26, 15:21] = True  # recovered, left of the speck
    unblended[20, 20] = False
    state = State(image=np.zeros((40, 40, 3), np.float32), mask=mask, unblended=unblended)
    MaskPrepStage(MaskPrepConfig(grow_pixels=3.0)).run(state)
    assert state.hole[20, 20] and state.hole[20, 22]  # grown to the right, where nothing was recovered
    assert not state.hole[unblended].any()
