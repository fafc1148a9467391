"""The whole pipeline on the reference example and the bundled photo."""

import numpy as np
import pytest
from conftest import requires_shared
from helpers import EXAMPLE, SEED
from PIL import Image

import clearfill
from clearfill.cli import main


@requires_shared(SEED)
@pytest.mark.parametrize("preset", ["reference", "offline", "fast"])
def test_seed_example_hole_is_filled_and_outside_is_identical(preset):
    result = clearfill.remove(SEED / "original.png", SEED / "mask.png", preset, keep_stages=True)
    original = np.asarray(Image.open(SEED / "original.png").convert("RGB"))
    output = np.asarray(result.image)
    user_mask = np.asarray(Image.open(SEED / "mask.png")) > 127
    assert output.shape == original.shape
    assert result.hole[user_mask].all()  # mask prep never drops what the user marked
    outside = ~result.hole
    assert np.array_equal(output[outside], original[outside])
    changed = np.any(output != original, axis=2)
    paper = np.median(original[~user_mask], axis=0)
    ink = user_mask & (np.abs(original.astype(int) - paper).max(axis=2) > 60)  # the bottle, glass and text
    assert ink.sum() > 5000 and changed[ink].mean() > 0.97
    assert (np.abs(output.astype(int) - paper).max(axis=2) > 60)[ink].mean() < 0.5  # mostly paper now
    assert result.ran("remove") and result.ran("crop") and result.ran("stitch")
    assert "refine" in result.skipped  # no refiner in this build: said so, not hidden
    assert set(result.stage_pictures) >= {"mask", "remove", "crop", "resize", "stitch"}


@requires_shared(SEED)
def test_reference_crop_and_working_size_match_the_workflow():
    result = clearfill.remove(SEED / "original.png", SEED / "mask.png", "reference", keep_stages=True)
    crop = result.stage_pictures["crop"]
    working = result.stage_pictures["resize"]
    # The reference's mask grows by ~6 px, so its box may step up a padding multiple
    # but never below the workflow's 640 x 512.
    assert crop.shape[1] % 64 == 0 and crop.shape[0] % 64 == 0
    assert crop.shape[1] >= 640 and crop.shape[0] >= 512
    assert working.shape[1] % 64 == 0 and working.shape[0] % 64 == 0
    assert 0.8e6 < working.shape[0] * working.shape[1] <= 1024 * 1024


@requires_shared(SEED)
def test_cli_on_the_seed_example_with_save_stages(tmp_path, capsys):
    out = tmp_path / "out.png"
    code = main(["remove", str(SEED / "original.png"), "--mask", str(SEED / "mask.png"), "-o", str(out),
                 "--save-stages", str(tmp_path / "stages")])
    assert code == 0
    assert (tmp_path / "stages" / "sheet.png").exists()
    assert Image.open(out).size == (736, 736)


def test_bundled_example_runs_offline():
    result = clearfill.remove(EXAMPLE / "coffee.png", EXAMPLE / "spoon-mask.png", "offline")
    original = np.asarray(Image.open(EXAMPLE / "coffee.png").convert("RGB"))
    output = np.asarray(result.image)
    assert np.array_equal(output[~result.hole], original[~result.hole])
    assert np.any(output != original, axis=2)[result.hole].mean() > 0.9


def test_same_seed_same_output():
    first = clearfill.remove(EXAMPLE / "coffee.png", EXAMPLE / "spoon-mask.png", "offline", seed=5)
    second = clearfill.remove(EXAMPLE / "coffee.png", EXAMPLE / "spoon-mask.png", "offline", seed=5)
    assert np.array_equal(first.pixels, second.pixels)


def test_library_accepts_pil_images_and_arrays_and_never_modifies_them():
    image = Image.open(EXAMPLE / "coffee.png").convert("RGB")
    mask_array = np.asarray(Image.open(EXAMPLE / "spoon-mask.png")).copy()
    before_image, before_mask = np.asarray(image).copy(), mask_array.copy()
    result = clearfill.remove(image, mask_array, "fast")
    assert result.image.size == image.size
    assert np.array_equal(np.asarray(image), before_image) and np.array_equal(mask_array, before_mask)


def test_empty_mask_returns_the_image_unchanged():
    image = Image.open(EXAMPLE / "coffee.png").convert("RGB")
    result = clearfill.remove(image, np.zeros((image.height, image.width), np.uint8), "reference")
    assert np.array_equal(np.asarray(result.image), np.asarray(image))
    assert [record.name for record in result.stages if record.ran] == ["mask"]
    assert result.skipped["remove"] == "mask is empty: nothing to remove"
