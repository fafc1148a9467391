"""LaMa and the model manager, offline: the real big-lama architecture at random
weights, saved in every layout users have and loaded back through clearfill's loader.

spandrel's LaMa has a fixed width (51 M parameters, no channel argument), so there is
no smaller variant to build; the suite builds the full architecture once per session
and runs it on small images, which keeps it fast.
"""

import hashlib
import os
import pickle

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
spandrel = pytest.importorskip("spandrel")

from conftest import requires_shared  # noqa: E402
from helpers import SEED, disk_mask, photo_like  # noqa: E402

import clearfill  # noqa: E402
from clearfill import models, removers  # noqa: E402
from clearfill.cli import main as cli_main  # noqa: E402
from clearfill.errors import ChecksumError, ModelNotAvailableError, UnsafeModelError  # noqa: E402
from clearfill.models import store  # noqa: E402
from clearfill.models.registry import REGISTRY  # noqa: E402
from clearfill.removers.lama import region_boxes  # noqa: E402


@pytest.fixture(scope="session")
def lama_files(tmp_path_factory):
    """The same random big-lama weights in each layout: spandrel state dict (.pth),
    the original checkpoint (.ckpt, ``generator.*`` keys, extra training entries),
    safetensors, and TorchScript (.pt, as IOPaint distributes big-lama)."""
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    model = LaMa(in_nc=4, out_nc=3).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = tmp_path_factory.mktemp("lama")
    files = {"pth": folder / "lama-public.pth", "ckpt": folder / "lama-original.ckpt",
             "safetensors": folder / "lama.safetensors", "torchscript": folder / "big-lama.pt"}
    torch.save(state, files["pth"])
    original = {k.replace("model.model", "generator.model", 1): v for k, v in state.items()}
    original["discriminator.model0.0.weight"] = torch.zeros(4, 3, 3, 3)
    torch.save({"state_dict": original, "epoch": 40, "global_step": 1000}, files["ckpt"])
    save_file(state, str(files["safetensors"]))
    with torch.no_grad():
        traced = torch.jit.trace(model, (torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)), check_trace=False)
    traced.save(str(files["torchscript"]))
    return files


def lama(path, **options):
    return removers.create("lama", {"model": str(path), **options}, device="cpu")


@pytest.fixture(scope="session")
def small_case():
    rng = np.random.default_rng(5)
    image = photo_like(rng, 40, 56).astype(np.float32) / 255
    hole = disk_mask(40, 56, 28, 20, 9) > 0
    return image, hole


def test_every_layout_loads_and_gives_the_same_fill(lama_files, small_case, monkeypatch):
    image, hole = small_case
    # TorchScript is trusted only as the registry's checksummed file: pretend ours is it.
    ts = lama_files["torchscript"]
    monkeypatch.setitem(REGISTRY, "big-lama", REGISTRY["big-lama"].__class__(
        **{**REGISTRY["big-lama"].__dict__, "md5": hashlib.md5(ts.read_bytes()).hexdigest()}))
    outputs = {name: lama(path)(image, hole) for name, path in lama_files.items()}
    reference = outputs.pop("pth")
    assert reference.shape == image.shape and np.isfinite(reference).all()
    for name, out in outputs.items():
        assert np.allclose(out, reference, atol=1e-4), name


def test_torchscript_is_refused_unless_it_is_the_checksummed_registry_file(lama_files, small_case):
    with pytest.raises(UnsafeModelError, match="TorchScript"):
        lama(lama_files["torchscript"])


def test_a_record_beside_a_torchscript_file_is_not_trusted(tmp_path, monkeypatch):
    """A "model pack" with a scripted module named big-lama.pt and a sidecar claiming the
    published MD5 (with the right size and mtime): its code must never be loaded."""
    import json

    class Payload(torch.nn.Module):
        def forward(self, x):
            return x + 1

    pack = tmp_path / "pack"
    pack.mkdir()
    scripted = pack / "big-lama.pt"
    torch.jit.script(Payload()).save(str(scripted))
    stat = scripted.stat()
    claim = {"sha256": "0" * 64, "md5": REGISTRY["big-lama"].md5, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    (pack / "big-lama.pt.verified.json").write_text(json.dumps(claim))
    loaded = []
    monkeypatch.setattr(torch.jit, "load", lambda *args, **kwargs: loaded.append(args))
    with pytest.raises(UnsafeModelError, match="TorchScript"):
        lama(scripted)
    assert loaded == []
    with pytest.raises(ChecksumError):
        store.verify(REGISTRY["big-lama"], scripted)
    assert sorted(p.name for p in pack.iterdir()) == ["big-lama.pt", "big-lama.pt.verified.json"]


def test_checking_a_model_writes_nothing_beside_it(lama_files):
    folder = lama_files["pth"].parent
    before = sorted(p.name for p in folder.iterdir())
    lama(lama_files["pth"])
    with pytest.raises(UnsafeModelError):
        lama(lama_files["torchscript"])
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_crafted_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for protocol in (2, pickle.HIGHEST_PROTOCOL):  # torch.save's protocol, and Python's newest
        evil = tmp_path / f"evil{protocol}.pth"
        evil.write_bytes(pickle.dumps({"model.model.1.bn_l.running_mean": Exploit()}, protocol=protocol))
        with pytest.raises(UnsafeModelError, match=f"refused to load .*evil{protocol}.pth: it holds Python objects"):
            lama(evil)
        assert not marker.exists()
    with pytest.raises(UnsafeModelError, match=r"\(it imports posix.system\)"):
        lama(tmp_path / "evil2.pth")


def test_lama_through_the_pipeline_changes_only_the_hole(lama_files, small_case, tmp_path):
    image, hole = small_case
    result = clearfill.remove((image * 255).astype(np.uint8), hole.astype(np.uint8) * 255, "offline",
                              **{"remove.method": "lama", "remove.model": str(lama_files["pth"])})
    assert result.ran("remove") and "lama" in result.note("remove")
    original = (image * 255).astype(np.uint8)
    output = np.asarray(result.image)
    assert np.array_equal(output[~result.hole], original[~result.hole])
    assert np.any(output != original, axis=2)[result.hole].mean() > 0.9


@pytest.mark.parametrize("height, width", [(37, 53), (1, 40), (40, 1), (15, 300), (64, 64)])
def test_odd_sizes_and_strips(lama_files, height, width):
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.random((height, width, 3), dtype=np.float32)
    hole = np.zeros((height, width), bool)
    hole[height // 3: height // 3 + max(1, height // 3), width // 3: width // 3 + max(1, width // 3)] = True
    out = lama(lama_files["safetensors"])(image, hole)
    assert out.shape == image.shape
    assert np.array_equal(out[~hole], image[~hole])


def test_rgba_input_keeps_alpha(lama_files, tmp_path):
    rng = np.random.default_rng(3)
    rgba = np.dstack([photo_like(rng, 48, 48), rng.integers(0, 256, (48, 48), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    Image.fromarray(disk_mask(48, 48, 24, 24, 8)).save(tmp_path / "mask.png")
    result = clearfill.remove(tmp_path / "in.png", tmp_path / "mask.png", "fast",
                              **{"remove.method": "lama", "remove.model": str(lama_files["pth"])})
    out = np.asarray(result.image)
    assert result.image.mode == "RGBA" and np.array_equal(out[..., 3], rgba[..., 3])


def test_region_strategy_on_a_large_image(lama_files):
    rng = np.random.default_rng(9)
    image = rng.random((1500, 2000, 3), dtype=np.float32)
    hole = np.zeros((1500, 2000), bool)
    hole[100:140, 150:200] = True
    hole[1300:1350, 1800:1900] = True
    remover = lama(lama_files["pth"])
    seen = []
    infer = remover._infer
    remover._infer = lambda img, h: seen.append(img.shape) or infer(img, h)
    out = remover(image, hole)
    assert out.shape == image.shape and np.array_equal(out[~hole], image[~hole])
    assert len(seen) == 2 and all(max(s[:2]) <= 2 * 128 + 100 for s in seen)  # two crops, never the frame


def test_region_boxes_merge_overlaps_and_clip():
    hole = np.zeros((100, 200), bool)
    hole[10:20, 10:20] = True
    hole[10:20, 40:50] = True  # within 2 x margin of the first: merged
    hole[80:90, 180:195] = True
    assert region_boxes(hole, 15) == [(0, 0, 65, 35), (165, 65, 200, 100)]


@requires_shared(SEED)
def test_reference_pipeline_with_lama_on_the_seed_example(lama_files):
    result = clearfill.remove(SEED / "original.png", SEED / "mask.png", "reference",
                              **{"remove.method": "lama", "remove.model": str(lama_files["pth"])})
    original = np.asarray(Image.open(SEED / "original.png").convert("RGB"))
    output = np.asarray(result.image)
    assert output.shape == original.shape
    assert np.array_equal(output[~result.hole], original[~result.hole])


# ----------------------------------------------------------------------------- the model manager


def test_offline_mode_never_downloads():
    with pytest.raises(ModelNotAvailableError, match="offline mode is on"):
        models.locate("big-lama")


def test_auto_falls_back_to_the_best_offline_remover_and_says_why():
    choice = removers.choose("auto")
    assert choice.name == "exemplar"
    assert "lama unavailable" in choice.reason and "offline" in choice.reason


def test_auto_picks_lama_when_its_weights_are_cached(lama_files, isolated_model_cache):
    cached = store.path_of(REGISTRY["big-lama"])
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"placeholder")  # presence is what "auto" checks; loading is checked elsewhere
    assert removers.choose("auto").name == "lama"


def _serve(tmp_path, monkeypatch, payload: bytes, md5: str):
    source = tmp_path / "upstream-big-lama.pt"
    source.write_bytes(payload)
    monkeypatch.setenv("CLEARFILL_URL_BIG_LAMA", source.as_uri())
    monkeypatch.setenv("CLEARFILL_OFFLINE", "0")
    monkeypatch.setitem(REGISTRY, "big-lama", REGISTRY["big-lama"].__class__(
        **{**REGISTRY["big-lama"].__dict__, "md5": md5}))


def test_download_verifies_and_places_the_file_atomically(tmp_path, monkeypatch):
    payload = os.urandom(3 << 20)
    _serve(tmp_path, monkeypatch, payload, hashlib.md5(payload).hexdigest())
    path = store.download("big-lama")
    assert path.read_bytes() == payload and path == store.path_of(REGISTRY["big-lama"])
    assert not path.with_name(path.name + ".part").exists()
    assert "md5 matches" in store.verify(REGISTRY["big-lama"])
    assert cli_main(["models", "verify", "big-lama"]) == 0


def test_a_corrupt_download_leaves_nothing_behind(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch, b"not the model", "0" * 32)
    with pytest.raises(ChecksumError, match="does not match its published md5"):
        store.download("big-lama")
    target = store.path_of(REGISTRY["big-lama"])
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


def test_verify_catches_a_file_changed_after_download(tmp_path, monkeypatch):
    payload = os.urandom(1 << 20)
    _serve(tmp_path, monkeypatch, payload, hashlib.md5(payload).hexdigest())
    path = store.download("big-lama")
    path.write_bytes(payload[:-1] + b"\0")
    with pytest.raises(ChecksumError, match="delete it and run `clearfill models download big-lama`"):
        store.verify(REGISTRY["big-lama"])


def test_a_failed_download_says_how_to_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARFILL_URL_BIG_LAMA", (tmp_path / "missing.pt").as_uri())
    monkeypatch.setenv("CLEARFILL_OFFLINE", "0")
    with pytest.raises(ModelNotAvailableError, match="again to resume"):
        store.download("big-lama")
    assert not store.path_of(REGISTRY["big-lama"]).exists()


def test_models_cli(capsys):
    assert cli_main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("big-lama", "mat-places512", "2x-animesharpv2-mosr-sharp"):
        assert name in listing
    assert cli_main(["models", "path", "big-lama"]) == 0
    assert capsys.readouterr().out.strip().endswith("big-lama.pt")
    assert cli_main(["models", "download", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_explicit_lama_without_weights_is_an_error_not_a_fallback(tmp_path, capsys):
    Image.new("RGB", (32, 32)).save(tmp_path / "i.png")
    Image.fromarray(disk_mask(32, 32, 16, 16, 5)).save(tmp_path / "m.png")
    code = cli_main(["remove", str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"),
                               "-o", str(tmp_path / "o.png"), "--remover", "lama"])
    assert code == 2 and "big-lama is not downloaded and offline mode is on" in capsys.readouterr().err


@pytest.mark.parametrize("kind, fragment", [
    ("empty", "is empty"),
    ("text", "not a PyTorch weights file"),
    ("partial", "not a PyTorch weights file, or a truncated one"),
    ("partial-safetensors", "cannot read"),
    ("wrong-shape", "do not fit the architecture"),
    ("unknown", "no known architecture"),
])
def test_broken_model_files_are_one_line_errors(lama_files, tmp_path, capsys, kind, fragment):
    from safetensors.torch import save_file

    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    Image.fromarray(photo_like(np.random.default_rng(0), 48, 64)).save(image)
    Image.fromarray(disk_mask(48, 64, 30, 24, 8)).save(mask)
    state = torch.load(lama_files["pth"], weights_only=True)
    path = tmp_path / f"{kind}.pth"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "partial":
        path.write_bytes(lama_files["pth"].read_bytes()[:200_000])
    elif kind == "partial-safetensors":
        path = tmp_path / "partial.safetensors"
        path.write_bytes(lama_files["safetensors"].read_bytes()[:100_000])
    elif kind == "wrong-shape":
        name = next(key for key, value in state.items() if value.ndim == 4)
        state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 2)
        path = tmp_path / "wrong-shape.safetensors"
        save_file(state, str(path))
    else:
        torch.save({"some.layer.weight": torch.zeros(3, 3)}, path)
    code = cli_main(["remove", str(image), "--mask", str(mask), "-o", str(tmp_path / "out.png"),
                     "--remover", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out.png").exists()


def test_a_small_image_runs_per_region_only_when_the_regions_are_a_small_part_of_it(lama_files):
    """Below the trigger size, LaMa sees the whole image unless the holes' regions cover at
    most ``region_max_fraction`` of it; then only those regions (less work, same fill)."""
    rng = np.random.default_rng(5)
    image = rng.random((400, 600, 3), dtype=np.float32)
    remover = lama(lama_files["pth"], region_margin=32)
    seen = []
    infer = remover._infer
    remover._infer = lambda img, h: seen.append(img.shape[:2]) or infer(img, h)
    small_hole = np.zeros((400, 600), bool)
    small_hole[180:200, 280:300] = True  # its region: about 84 x 84 of 400 x 600
    remover(image, small_hole)
    assert seen == [(84, 84)]
    seen.clear()
    large_hole = np.zeros((400, 600), bool)
    large_hole[40:360, 60:540] = True  # its region covers nearly all of the image
    remover(image, large_hole)
    assert seen == [(400, 600)]


def test_models_are_pooled_apart_from_per_call_settings(lama_files, monkeypatch):
    """Two option sets naming the same file share one loaded network; building a
    pipeline around it loads nothing; another precision is another network."""
    from clearfill.api import build_pipeline
    from clearfill.config import PRESETS
    from clearfill.models.pool import POOL

    first = lama(lama_files["pth"], region_margin=64)
    monkeypatch.setattr("clearfill.removers.lama.load_descriptor",
                        lambda *a, **k: pytest.fail("a pooled model was loaded again"))
    second = lama(lama_files["pth"], region_margin=16, region_trigger=400)
    assert second.network is first.network and second.config.region_margin == 16
    for padding in (16, 32, 48):
        config = PRESETS["fast"].with_overrides({"remove.method": "lama", "remove.model": str(lama_files["pth"]),
                                                 "crop.padding": padding})
        pipeline = build_pipeline(config, device="cpu")
        assert pipeline.stages[2].remover.network is first.network and pipeline.config is config
    assert len([key for key in POOL.keys() if key[0] == "inpainter"]) == 1
    monkeypatch.undo()
    other = lama(lama_files["pth"], channels_last=False)
    assert other.network is not first.network and len(POOL.keys()) == 2
