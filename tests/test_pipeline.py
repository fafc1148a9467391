"""The pipeline as a plan: stages declare what they need and make, the order is
checked when it is built, and a result reports the config that actually ran."""

import numpy as np
import pytest
from helpers import disk_mask, photo_like

import clearfill
from clearfill.api import build_pipeline
from clearfill.config import PRESETS
from clearfill.errors import InvalidConfigError
from clearfill.pipeline import Pipeline
from clearfill.stages import CropStage, MaskPrepStage, RemoveStage, StitchStage


def test_a_stage_whose_inputs_no_earlier_stage_makes_is_refused_when_built():
    config = PRESETS["fast"]
    with pytest.raises(InvalidConfigError, match="stage 'crop' needs removed, which no stage before it makes"):
        Pipeline([MaskPrepStage(config.mask), CropStage(config.crop)])
    with pytest.raises(InvalidConfigError, match="stage 'stitch' needs crop"):
        Pipeline([MaskPrepStage(config.mask), RemoveStage(config.remove), StitchStage(config.stitch)])
    with pytest.raises(InvalidConfigError, match="unique"):
        Pipeline([MaskPrepStage(config.mask), MaskPrepStage(config.mask)])
    Pipeline([MaskPrepStage(config.mask), RemoveStage(config.remove), CropStage(config.crop),
              StitchStage(config.stitch)])  # resize and refine are optional


class _ReadsRecorded:
    """A State that records which of its fields are read, and by which stage."""

    def __init__(self, state):
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "reads", set())

    def __getattr__(self, name):
        self.reads.add(name)
        return getattr(self._state, name)

    def __setattr__(self, name, value):
        setattr(self._state, name, value)


@pytest.mark.parametrize("with_mark", [False, True])
def test_every_stage_reads_only_what_it_declares(with_mark):
    """``needs``, ``uses`` and ``makes`` are the whole of what a stage touches (its notes
    and the progress reporter aside), an overlay to undo or not."""
    from clearfill.detect.marks import Overlay
    from clearfill.pipeline import State

    rng = np.random.default_rng(0)
    image = photo_like(rng, 48, 64).astype(np.float32) / 255
    mask = (disk_mask(48, 64, 30, 24, 8) > 0).astype(np.float32)
    overlay = None
    if with_mark:
        alpha = np.zeros((48, 64), np.float32)
        alpha[20:28, 10:50] = 0.4
        overlay = Overlay(alpha=alpha, colour=np.ones(3, np.float32), opacity=0.4)
    state = State(image=image, mask=mask, seed=1, overlay=overlay)
    for stage in build_pipeline(PRESETS["fast"]).stages:
        recorded = _ReadsRecorded(state)
        try:
            stage.run(recorded)
        except clearfill.pipeline.StageSkipped:
            pass
        declared = {*stage.needs, *getattr(stage, "uses", ()), *stage.makes, "notes", "progress", "size"}
        undeclared = recorded.reads - declared
        assert not undeclared, f"{stage.name} reads {undeclared} without declaring them"


def test_result_config_is_the_config_that_ran():
    rng = np.random.default_rng(0)
    image, mask = photo_like(rng, 48, 64), disk_mask(48, 64, 30, 24, 8)
    assert clearfill.remove(image, mask, "fast").config == PRESETS["fast"]
    tuned = clearfill.remove(image, mask, "fast", **{"crop.padding": 32})
    assert tuned.config.crop.padding == 32
    pipeline = build_pipeline(PRESETS["offline"].with_overrides({"remove.method": "ns"}))
    result = clearfill.remove(image, mask, pipeline=pipeline)
    assert result.config is pipeline.config and result.config.remove.method == "ns"
    assert "ns" in result.note("remove")
    with pytest.raises(InvalidConfigError, match="either a pipeline or a preset"):
        clearfill.remove(image, mask, "fast", pipeline=pipeline)
    with pytest.raises(InvalidConfigError, match="either a pipeline or a preset"):
        clearfill.remove(image, mask, pipeline=pipeline, **{"crop.padding": 32})


def test_pictures_made_after_the_run_are_those_made_as_each_stage_ended():
    """A caller may hand the output over first and make the stage pictures after: from
    the final state they are the same, the unblend stage's (which replaces image and
    mask) included."""
    from clearfill.detect.marks import Overlay
    from clearfill.pipeline import State

    rng = np.random.default_rng(2)
    image = photo_like(rng, 48, 64).astype(np.float32) / 255
    mask = (disk_mask(48, 64, 30, 24, 8) > 0).astype(np.float32)
    alpha = np.zeros((48, 64), np.float32)
    alpha[20:28, 10:50] = 0.4
    marked = image * (1 - alpha[..., None]) + 0.4 * alpha[..., None]
    overlay = Overlay(alpha=alpha, colour=np.ones(3, np.float32), opacity=0.4)
    pipeline = build_pipeline(PRESETS["fast"])

    def run(**keep):
        return pipeline.run(State(image=marked, mask=mask, seed=1, overlay=overlay), **keep)

    during = run(keep_pictures=True, picture_side=40).pictures
    later = pipeline.pictures(run(), side=40)
    assert {"unblend", "mask", "remove", "stitch"} <= set(during) and set(later) == set(during)
    for name, picture in during.items():
        assert np.array_equal(later[name], picture), name
    assert max(later["stitch"].shape[:2]) == 40


def test_stage_pictures_can_wait_until_asked_for():
    rng = np.random.default_rng(3)
    image, mask = photo_like(rng, 48, 64), disk_mask(48, 64, 30, 24, 8)
    kept = clearfill.remove(image, mask, "offline", keep_stages=True)
    later = clearfill.remove(image, mask, "offline", keep_stages="later")
    assert later.stage_pictures == {} and np.array_equal(later.pixels, kept.pixels)
    made = later.make_stage_pictures()
    assert made is later.stage_pictures and made.keys() == kept.stage_pictures.keys()
    assert all(np.array_equal(made[name], kept.stage_pictures[name]) for name in made)
    assert later.make_stage_pictures() is made  # once
    with pytest.raises(InvalidConfigError, match="keep_stages is True, False or 'later'"):
        clearfill.remove(image, mask, "offline", keep_stages="yes")
