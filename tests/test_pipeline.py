"""The pipeline as a plan: stages declare what they need and make, the order is
checked when it is built, and a result reports the config that actually ran."""

import numpy as np
import pytest

import clearfill
from clearfill.api import build_pipeline
from clearfill.config import PRESETS
from clearfill.errors import InvalidConfigError
from clearfill.pipeline import Pipeline
from clearfill.stages import CropStage, MaskPrepStage, RemoveStage, StitchStage
from helpers import disk_mask, photo_like


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
