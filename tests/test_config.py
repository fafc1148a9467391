import pytest

from clearfill.config import PRESETS, parse_assignment, preset
from clearfill.errors import InvalidConfigError


def test_reference_preset_has_the_workflows_parameters():
    ref = PRESETS["reference"]
    assert (ref.crop.expand_pixels, ref.crop.expand_factor, ref.crop.padding) == (64, 1.2, 64)
    assert (ref.crop.mask_blur_pixels, ref.crop.blend_pixels) == (8.0, 32.0)
    assert (ref.mask.blur_radius, round(ref.mask.blur_threshold * 255)) == (11.0, 75)
    assert (ref.resize.target_pixels, ref.resize.multiple) == (1024 * 1024, 64)
    assert (ref.refine.strength, ref.refine.steps, ref.refine.guidance) == (0.8, 20, 30.0)


def test_presets_are_distinct_and_named():
    assert {"reference", "fast", "offline"} <= set(PRESETS)
    assert len({repr(c) for c in PRESETS.values()}) == len(PRESETS)
    with pytest.raises(InvalidConfigError, match="unknown preset 'nope'"):
        preset("nope")


def test_overrides_are_typed_from_text_and_by_mapping():
    config = PRESETS["reference"].with_overrides({"crop.padding": "32", "mask.invert": "yes",
                                                  "resize": {"method": "bicubic"}})
    assert config.crop.padding == 32 and config.mask.invert is True and config.resize.method == "bicubic"
    assert PRESETS["reference"].crop.padding == 64  # presets are not modified


def test_remove_overrides_pick_the_method_and_collect_its_options():
    config = PRESETS["fast"].with_overrides({"remove.method": "ns", "remove.radius": "7"})
    assert config.remove.method == "ns" and config.remove.options == {"radius": "7"}
    assert PRESETS["fast"].with_overrides({"remove.method": "exemplar"}).remove.options == {}
    assert PRESETS["fast"].with_overrides({"remove.radius": 9}).remove.options == {"radius": 9}


@pytest.mark.parametrize("overrides, message", [
    ({"crop.nope": 1}, "crop: unknown parameter 'nope'"),
    ({"nope.x": 1}, "unknown stage 'nope'"),
    ({"crop.padding": "wide"}, "crop.padding: expected int"),
    ({"crop.padding": "0"}, "crop.padding must be between 1 and 1024"),
    ({"mask.invert": "maybe"}, "mask.invert: expected bool"),
    ({"crop": 3}, "needs a parameter name"),
])
def test_bad_overrides_name_the_problem(overrides, message):
    with pytest.raises(InvalidConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        PRESETS["reference"].with_overrides(overrides)


def test_parse_assignment():
    assert parse_assignment("crop.padding = 32") == ("crop.padding", "32")
    with pytest.raises(InvalidConfigError, match="stage.param=value"):
        parse_assignment("padding=32")
