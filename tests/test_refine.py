"""The generative half offline: a tiny FLUX.1 Fill pipeline at random weights, saved
with save_pretrained and loaded back through clearfill's loader; the whole reference
pipeline (random LaMa -> crop -> random SR -> refine -> stitch); and the guard."""

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from conftest import requires_shared  # noqa: E402
from helpers import SEED, disk_mask, photo_like  # noqa: E402
from tiny_flux import build_tiny_flux_fill  # noqa: E402

import clearfill  # noqa: E402
from clearfill import guard, imaging  # noqa: E402
from clearfill.cli import main as cli_main  # noqa: E402
from clearfill.errors import ModelNotAvailableError  # noqa: E402
from clearfill.models.refiner import Refiner  # noqa: E402


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    return build_tiny_flux_fill(tmp_path_factory.mktemp("flux") / "tiny-flux-fill")


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """Random big-lama (the real architecture) and a small Real-ESRGAN Compact 2x."""
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.LaMa import LaMa

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    for name, model in {"lama": LaMa(in_nc=4, out_nc=3), "sr": Compact(num_feat=8, num_conv=2, upscale=2)}.items():
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}.safetensors"))
    return folder / "lama.safetensors", folder / "sr.safetensors"


def count_transformer_calls(refiner):
    calls = []
    refiner.pipeline.transformer.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_strength_runs_that_share_of_the_steps_and_is_deterministic(tiny_flux):
    refiner = Refiner(str(tiny_flux), device="cpu")
    calls = count_transformer_calls(refiner)
    rng = np.random.default_rng(0)
    image = rng.random((64, 96, 3), dtype=np.float32)
    mask = np.zeros((64, 96), np.float32)
    mask[16:48, 24:72] = 1
    first = refiner(image, mask, seed=7, strength=0.8, steps=10)
    assert len(calls) == int(10 * 0.8)
    calls.clear()
    assert np.array_equal(refiner(image, mask, seed=7, strength=0.8, steps=10), first)
    assert not np.array_equal(refiner(image, mask, seed=8, strength=0.8, steps=10), first)
    calls.clear()
    assert refiner(image, mask, seed=7, strength=0.5, steps=10).shape == image.shape
    assert len(calls) == 5


def test_a_pooled_refiner_serves_any_prompt_after_the_empty_one(tiny_flux, monkeypatch):
    """The server shares one refiner: an empty prompt first must not cost a later request
    its prompt, and each prompt is encoded once while it stays among the recent ones."""
    from clearfill.models import refiner as refiner_module

    monkeypatch.setattr(refiner_module, "MOST_CACHED_PROMPTS", 2, raising=False)
    refiner = Refiner(str(tiny_flux), device="cpu")
    encoded = []
    encode = refiner.pipeline.encode_prompt

    def counting(**kwargs):  # the pipeline calls it too, with the embeddings given and no prompt
        if kwargs.get("prompt") is not None:
            encoded.append(kwargs["prompt"])
        return encode(**kwargs)

    monkeypatch.setattr(refiner.pipeline, "encode_prompt", counting)
    image = np.random.default_rng(1).random((32, 32, 3), dtype=np.float32)
    mask = np.ones((32, 32), np.float32)
    outputs = {prompt: refiner(image, mask, seed=1, steps=2, prompt=prompt) for prompt in ("", "a brick wall", "")}
    assert encoded == ["", "a brick wall"]
    assert not np.array_equal(outputs[""], outputs["a brick wall"])
    refiner(image, mask, seed=1, steps=2, prompt="sky")  # a third prompt: the least recently used goes
    refiner(image, mask, seed=1, steps=2, prompt="")
    refiner(image, mask, seed=1, steps=2, prompt="a brick wall")
    assert encoded == ["", "a brick wall", "sky", "a brick wall"]
    assert refiner.pipeline.text_encoder is not None and refiner.pipeline.text_encoder_2 is not None


@requires_shared(SEED)
def test_the_whole_reference_workflow_on_the_seed_example(tiny_flux, small_models, tmp_path, capsys):
    lama, sr = small_models
    # A tiny transformer still attends over every latent token: 0.1 MP keeps it seconds on a CPU.
    settings = ["--preset", "reference", "--remover", str(lama), "--upscaler", str(sr), "--refiner", str(tiny_flux),
                "--set", "refine.steps=5", "--set", "resize.target_pixels=100000", "--set", "resize.multiple=32"]
    out = tmp_path / "out.png"
    code = cli_main(["remove", str(SEED / "original.png"), "--mask", str(SEED / "mask.png"), "-o", str(out),
                     "--save-stages", str(tmp_path / "stages"), "-v", *settings])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "sr.safetensors skipped" in err  # the 640x512 crop is already above this working size
    assert "strength 0.8, 5 steps" in err
    result = clearfill.remove(SEED / "original.png", SEED / "mask.png", "reference", keep_stages=True, **{
        "remove.method": "lama", "remove.model": str(lama), "resize.upscaler": str(sr),
        "resize.upscaler_on_cpu": True, "refine.model": str(tiny_flux), "refine.on_cpu": True,
        "refine.steps": 5, "resize.target_pixels": 100000, "resize.multiple": 32})
    assert result.ran("refine")
    working = result.stage_pictures["refine"]
    assert working.shape[0] % 16 == 0 and working.shape[1] % 16 == 0
    original = np.asarray(Image.open(SEED / "original.png").convert("RGB"))
    output = np.asarray(result.image)
    written = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(written, output)  # the CLI and the library agree: deterministic for the seed
    # The refined crop is blended in over the seam (4 + 32 px with the reference crop); beyond it, nothing moves.
    from clearfill.imaging import grow

    untouched = ~grow(result.hole, result.config.crop.seam_reach + 1)
    assert np.array_equal(output[untouched], original[untouched])
    assert np.any(output != original, axis=2)[result.hole].mean() > 0.5


def test_small_crops_go_through_the_sr_model_before_the_refiner(tiny_flux, small_models):
    _, sr = small_models
    rng = np.random.default_rng(4)
    result = clearfill.remove(photo_like(rng, 96, 128), disk_mask(96, 128, 64, 48, 16), "fast", keep_stages=True, **{
        "resize.upscaler": str(sr), "resize.upscaler_on_cpu": True, "resize.target_pixels": 256 * 256,
        "refine.model": str(tiny_flux), "refine.on_cpu": True, "refine.steps": 2})
    assert "sr.safetensors x2, then lanczos" in next(r.note for r in result.stages if r.name == "resize")
    refined = result.stage_pictures["refine"]
    assert refined.shape[0] % 16 == 0 and refined.shape[1] % 16 == 0 and result.ran("refine")


def test_candidates_and_the_guard_in_the_pipeline(tiny_flux):
    rng = np.random.default_rng(1)
    image = photo_like(rng, 96, 128)
    mask = disk_mask(96, 128, 64, 48, 16)
    result = clearfill.remove(image, mask, "fast", seed=11, **{
        "refine.model": str(tiny_flux), "refine.on_cpu": True, "refine.steps": 2, "refine.candidates": 3,
        "resize.target_pixels": 256 * 256})
    seeds = [score.seed for score in result.guard]
    assert seeds == [11, 12, 13]
    best = min(result.guard, key=lambda s: s.total)
    assert result.guard_choice == best.seed and "best of 3" in result.note("refine")


def test_guard_prefers_polish_to_a_new_object_or_a_colour_shift():
    rng = np.random.default_rng(2)
    removed = np.clip(photo_like(rng, 128, 128).astype(np.float32) / 255, 0, 1)
    mask = (disk_mask(128, 128, 64, 64, 40) > 0).astype(np.float32)
    polished = np.clip(removed + rng.normal(0, 0.02, removed.shape).astype(np.float32), 0, 1)
    new_object = removed.copy()
    new_object[(disk_mask(128, 128, 64, 64, 18) > 0)] = (0.95, 0.9, 0.2)  # a "CAKE" in the hole
    shifted = np.clip(removed * np.array([1.3, 0.8, 0.8], np.float32), 0, 1)
    scores = {name: guard.score(candidate, removed, mask, seed)
              for seed, (name, candidate) in enumerate({"polished": polished, "object": new_object,
                                                        "shifted": shifted}.items())}
    assert min(scores, key=lambda name: scores[name].total) == "polished"
    assert scores["object"].structure > 5 * scores["polished"].structure
    assert scores["shifted"].colour > 5 * scores["polished"].colour
    assert scores["object"].total > 0.25 > scores["polished"].total  # over the default warning threshold


def test_the_structure_term_counts_the_edges_a_candidate_brings():
    """Stripes painted into a plain hole: beyond their low-frequency difference, the
    structure term adds the edges they bring (a term that compared a candidate's edges
    with its own would add nothing). 48 px: scored at full size, sigma 2."""
    removed = np.full((48, 48, 3), 0.5, np.float32)
    mask = np.zeros((48, 48), np.float32)
    mask[8:40, 8:40] = 1
    stripes = np.sign(np.sin(2 * np.pi * np.arange(48) / 8))[None, :].repeat(48, 0)
    candidate = removed.copy()
    candidate[mask > 0] += (0.3 * stripes[mask > 0])[:, None]
    low_difference = np.abs(imaging.gaussian_blur(candidate, 2.0) - imaging.gaussian_blur(removed, 2.0))[mask > 0]
    assert guard.score(candidate, removed, mask, 0).structure > low_difference.mean() + 0.02


def test_refiner_sources_that_cannot_be_loaded_offline(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="offline mode is on"):
        Refiner("black-forest-labs/FLUX.1-Fill-dev", device="cpu")
    with pytest.raises(ModelNotAvailableError, match="refiner model not found"):
        Refiner(str(tmp_path / "missing.safetensors"), device="cpu")


def test_missing_refiner_weights_skip_in_presets_and_fail_when_named(tmp_path, capsys):
    rng = np.random.default_rng(3)
    image, mask = photo_like(rng, 64, 64), disk_mask(64, 64, 32, 32, 8)
    on_cpu = clearfill.remove(image, mask, "reference", **{"remove.method": "telea"})
    assert "not used on the CPU" in on_cpu.skipped["refine"]
    offline = clearfill.remove(image, mask, "reference", **{"remove.method": "telea", "refine.on_cpu": True})
    assert "unavailable" in offline.skipped["refine"] and "offline mode is on" in offline.skipped["refine"]
    Image.fromarray(image).save(tmp_path / "i.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    code = cli_main(["remove", str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"), "-o",
                     str(tmp_path / "o.png"), "--refiner", "flux1-fill-dev", "--remover", "telea"])
    assert code == 2 and "cannot load refiner flux1-fill-dev" in capsys.readouterr().err


def test_guard_scores_a_seam_at_the_border_of_the_hole():
    """A candidate that matches the removed image inside the hole but breaks off at its
    border is worse than one that joins it: only the seam term sees the difference."""
    rng = np.random.default_rng(3)
    removed = np.clip(photo_like(rng, 128, 128).astype(np.float32) / 255, 0, 1)
    hole = disk_mask(128, 128, 64, 64, 30) > 0
    joined = removed.copy()
    broken = removed.copy()
    border = hole & (imaging.distance_outside(~hole) <= 3)
    broken[border] = np.clip(broken[border] + 0.25 * (rng.random((int(border.sum()), 1)) > 0.5), 0, 1)
    scores = {name: guard.score(candidate, removed, hole.astype(np.float32), 0)
              for name, candidate in (("joined", joined), ("broken", broken))}
    assert scores["joined"].seam == 0.0 and scores["broken"].seam > 0.02
    assert scores["broken"].total == pytest.approx(scores["broken"].structure + scores["broken"].colour
                                                   + scores["broken"].seam)


def test_the_refiner_reports_each_step_and_stops_when_cancelled(tiny_flux, small_models):
    import threading

    from clearfill.errors import Cancelled
    from clearfill.pipeline import Progress

    lama, sr = small_models
    rng = np.random.default_rng(4)
    image, mask = photo_like(rng, 96, 128), disk_mask(96, 128, 60, 48, 14)
    overrides = {"remove.method": "lama", "remove.model": str(lama), "resize.upscaler": str(sr),
                 "resize.upscaler_on_cpu": True, "resize.target_pixels": 128 * 128, "resize.multiple": 16,
                 "crop.padding": 16, "crop.blend_pixels": 8.0, "crop.expand_pixels": 16,
                 "refine.model": str(tiny_flux), "refine.on_cpu": True, "refine.steps": 5, "refine.strength": 0.8}
    events = []
    clearfill.remove(image, mask, "reference", device="cpu", progress=Progress(events.append), **overrides)
    steps = [(e["step"], e["total"]) for e in events if e["type"] == "progress" and e["stage"] == "refine"]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    tiles = [e for e in events if e["type"] == "progress" and e["stage"] == "resize"]
    assert tiles and tiles[-1]["step"] == tiles[-1]["total"]
    order = [(e["stage"], e["status"]) for e in events if e["type"] == "stage"]
    assert order.index(("refine", "start")) < order.index(("refine", "end")) < order.index(("stitch", "start"))

    cancel = threading.Event()
    seen = []

    def listener(event):
        seen.append(event)
        if event["type"] == "progress" and event["stage"] == "refine" and event["step"] == 2:
            cancel.set()  # as DELETE /v1/jobs/{id} does, from another thread

    with pytest.raises(Cancelled):
        clearfill.remove(image, mask, "reference", device="cpu", progress=Progress(listener, cancel), **overrides)
    assert max(e["step"] for e in seen if e["type"] == "progress" and e["stage"] == "refine") == 2
    assert not any(e["type"] == "stage" and e["stage"] == "stitch" for e in seen)
