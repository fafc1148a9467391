"""The upscale stage: SR models at random weights through clearfill's loader, tiling
that matches the untiled result, and the fallbacks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

from helpers import disk_mask, photo_like  # noqa: E402

import clearfill  # noqa: E402
from clearfill.errors import InvalidInputError  # noqa: E402
from clearfill.models.upscaler import Upscaler, ramp, run_tiled, tile_starts  # noqa: E402
from clearfill.stages.resize import ResizeConfig  # noqa: E402


def save(model, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def compact_2x(tmp_path_factory):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(1)
    return save(Compact(num_feat=16, num_conv=3, upscale=2).eval(),
                tmp_path_factory.mktemp("sr") / "compact.safetensors")


@pytest.fixture(scope="module")
def mosr_2x(tmp_path_factory):
    from spandrel.architectures.MoSR import MoSR

    torch.manual_seed(2)
    model = MoSR(upscale=2, n_block=2, dim=16).eval()
    return save(model, tmp_path_factory.mktemp("sr") / "mosr.safetensors")


def test_tile_starts_cover_the_length_with_the_overlap():
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:], strict=False))


def test_ramps_of_neighbouring_tiles_sum_to_one_over_the_overlap():
    for overlap in (1, 2, 7, 16, 32):
        a, b = ramp(64, 0, overlap), ramp(64, overlap, 0)
        assert np.allclose(a[64 - overlap:] + b[:overlap], 1.0), overlap
        assert a[0] == 1 and b[-1] == 1  # image borders keep full weight
    assert ramp(64, 16, 0)[:4].max() == 0  # a tile's own edge pixels do not count where a neighbour covers them


@pytest.mark.parametrize("fixture", ["compact_2x", "mosr_2x"])
def test_tiled_equals_untiled_within_tolerance(fixture, request):
    path = request.getfixturevalue(fixture)
    rng = np.random.default_rng(0)
    image = photo_like(rng, 90, 140).astype(np.float32) / 255
    whole = Upscaler(str(path), device="cpu", tile=512)(image)
    tiled = Upscaler(str(path), device="cpu", tile=48, overlap=16)(image)
    assert whole.shape == (180, 280, 3) and tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() < 0.02 and np.abs(tiled - whole).mean() < 0.002


def test_run_tiled_with_an_exact_function_is_exact():
    rng = np.random.default_rng(3)
    image = rng.random((70, 90, 3), dtype=np.float32)

    def nearest_2x(tile):
        return np.repeat(np.repeat(tile, 2, axis=0), 2, axis=1)

    assert np.allclose(run_tiled(nearest_2x, image, 2, 32, 8), nearest_2x(image), atol=1e-6)


def test_a_model_that_is_not_sr_is_refused(tmp_path):
    from spandrel.architectures.LaMa import LaMa

    from clearfill.errors import ModelLoadError

    path = save(LaMa(in_nc=4, out_nc=3), tmp_path / "lama.safetensors")
    with pytest.raises(ModelLoadError, match="not a 3-channel image-to-image"):
        Upscaler(str(path), device="cpu")


def _remove_with(tmp_path, **overrides):
    rng = np.random.default_rng(4)
    image = photo_like(rng, 64, 80)
    mask = disk_mask(64, 80, 40, 30, 8)
    return clearfill.remove(image, mask, "fast", keep_stages=True, **overrides)


def test_the_resize_stage_runs_the_sr_model_then_resizes(compact_2x, tmp_path):
    result = _remove_with(tmp_path, **{"resize.upscaler": str(compact_2x), "resize.upscaler_on_cpu": True})
    note = next(r.note for r in result.stages if r.name == "resize")
    assert "compact.safetensors x2, then lanczos" in note
    working = result.stage_pictures["resize"]
    assert working.shape[0] % 16 == 0 and working.shape[1] % 16 == 0


def test_cpu_presets_skip_the_sr_model_and_say_so(compact_2x):
    result = _remove_with(None, **{"resize.upscaler": str(compact_2x)})
    note = next(r.note for r in result.stages if r.name == "resize")
    assert "not used on the CPU" in note


def test_missing_sr_weights_fall_back_or_fail_as_configured():
    result = _remove_with(None, **{"resize.upscaler": "2x-animesharpv2-mosr-sharp", "resize.upscaler_on_cpu": True})
    note = next(r.note for r in result.stages if r.name == "resize")
    assert "unavailable" in note and "fell back to lanczos" in note
    with pytest.raises(clearfill.ModelNotAvailableError):
        _remove_with(None, **{"resize.upscaler": "2x-animesharpv2-mosr-sharp", "resize.upscaler_on_cpu": True,
                              "resize.upscaler_fallback": False})
    with pytest.raises(InvalidInputError, match="model file not found"):
        _remove_with(None, **{"resize.upscaler": "/nope/sr.pth", "resize.upscaler_on_cpu": True,
                              "resize.upscaler_fallback": False})


def test_resize_multiple_must_suit_flux():
    with pytest.raises(ValueError, match="multiple of 16"):
        ResizeConfig(multiple=8)
