"""The model files users really have, laid out as their publishers ship them
(``publisher_layouts``), through clearfill's own loaders and CLI: each layout gives
the same pixels as the canonical form of the same weights. Also the precision each
model runs at on each device, and a ComfyUI models folder."""

import hashlib
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")
pytest.importorskip("diffusers")

from helpers import REPO, disk_mask, photo_like  # noqa: E402
from publisher_layouts import diffusers_to_bfl, diffusers_vae_to_bfl, lightning_lama_checkpoint  # noqa: E402
from tiny_flux import FLUX_WIDTH, build_tiny_flux_fill  # noqa: E402

import clearfill  # noqa: E402
from clearfill.cli import main as cli_main  # noqa: E402
from clearfill.errors import InvalidConfigError, ModelLoadError, ModelNotAvailableError, UnsafeModelError  # noqa: E402
from clearfill.models import loading  # noqa: E402
from clearfill.models.device import FLUX_PRECISION, LAMA_PRECISION, MAT_PRECISION, spandrel_precision  # noqa: E402
from clearfill.models.registry import REGISTRY  # noqa: E402


def _picture(folder, size=(72, 56)):
    rng = np.random.default_rng(11)
    Image.fromarray(photo_like(rng, size[1], size[0])).save(folder / "in.png")
    Image.fromarray(disk_mask(size[1], size[0], size[0] // 2, size[1] // 2, 12)).save(folder / "mask.png")
    return folder / "in.png", folder / "mask.png"


def _cli_remove(image, mask, out, *args):
    code = cli_main(["remove", str(image), "--mask", str(mask), "-o", str(out), "--preset", "fast", *args])
    assert code == 0
    return np.asarray(Image.open(out))


# ----------------------------------------------------------------------------- precision policy


@pytest.mark.parametrize("device", ["cuda", "mps", "cpu"])
def test_lama_and_mat_run_fp32_on_every_device(device):
    for policy in (LAMA_PRECISION, MAT_PRECISION):
        assert policy.dtype("auto", device) == torch.float32
        if device != "cpu":
            with pytest.raises(InvalidConfigError, match=f"{policy.model} cannot run in bf16"):
                policy.dtype("bf16", device)


def test_flux_runs_bf16_on_gpus_and_fp32_on_the_cpu():
    assert FLUX_PRECISION.dtype("auto", "cuda") == torch.bfloat16
    assert FLUX_PRECISION.dtype("auto", "mps") == torch.bfloat16
    assert FLUX_PRECISION.dtype("auto", "cpu") == torch.float32
    assert FLUX_PRECISION.dtype("fp16", "cuda") == torch.float16


def test_sr_follows_spandrels_flags():
    from spandrel import ModelLoader
    from spandrel.architectures.MoSR import MoSR

    descriptor = ModelLoader().load_from_state_dict(MoSR(upscale=2, n_block=2, dim=16).state_dict())
    policy = spandrel_precision(descriptor, "MoSR")
    expected = torch.float16 if descriptor.supports_half else torch.bfloat16 if descriptor.supports_bfloat16 \
        else torch.float32
    assert policy.dtype("auto", "cuda") == expected and policy.dtype("auto", "cpu") == torch.float32


def test_why_lama_is_fp32_a_bf16_lama_fails_in_its_fourier_unit():
    from spandrel.architectures.LaMa import LaMa

    model = LaMa(in_nc=4, out_nc=3).eval().to(torch.bfloat16)
    with torch.inference_mode(), pytest.raises(RuntimeError):
        model(torch.rand(1, 3, 32, 32, dtype=torch.bfloat16), torch.zeros(1, 1, 32, 32, dtype=torch.bfloat16))


def test_the_removers_take_their_policy_from_the_architecture(lama_state, tmp_path):
    from clearfill.removers.lama import ARCHITECTURES

    assert ARCHITECTURES["LaMa"].precision is LAMA_PRECISION and ARCHITECTURES["MAT"].precision is MAT_PRECISION
    assert not ARCHITECTURES["MAT"].channels_last  # its 5-D weights, and its fill changes in NHWC
    torch.save(lama_state["spandrel"], tmp_path / "lama.pth")
    with pytest.raises(InvalidConfigError, match="LaMa cannot run in fp16"):
        clearfill.removers.create("lama", {"model": str(tmp_path / "lama.pth"), "precision": "fp16"}, device="cuda") \
            if torch.cuda.is_available() else LAMA_PRECISION.dtype("fp16", "cuda")
    remover = clearfill.removers.create("lama", {"model": str(tmp_path / "lama.pth")}, device="cpu")
    assert remover.dtype == torch.float32 and next(remover.descriptor.model.parameters()).dtype == torch.float32


# ----------------------------------------------------------------------------- the original LaMa best.ckpt


@pytest.fixture(scope="module")
def lama_state():
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    model = LaMa(in_nc=4, out_nc=3).eval()
    return {"spandrel": {k: v.contiguous() for k, v in model.state_dict().items()},
            "generator": {k: v.contiguous() for k, v in model.model.state_dict().items()}}


def test_the_lightning_best_ckpt_loads_and_gives_the_canonical_pixels(lama_state, tmp_path):
    checkpoint = lightning_lama_checkpoint(lama_state["generator"], tmp_path / "best.ckpt")
    with pytest.raises(pickle.UnpicklingError):  # what made clearfill refuse it before: torch's restricted unpickler
        torch.load(checkpoint, weights_only=True)
    canonical = tmp_path / "lama.pth"
    torch.save(lama_state["spandrel"], canonical)
    image, mask = _picture(tmp_path)
    from_ckpt = _cli_remove(image, mask, tmp_path / "a.png", "--remover", str(checkpoint))
    from_pth = _cli_remove(image, mask, tmp_path / "b.png", "--remover", str(canonical))
    assert np.array_equal(from_ckpt, from_pth)
    assert np.any(from_ckpt != np.asarray(Image.open(image)))


def test_a_payload_inside_callbacks_stays_inert(lama_state, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (subprocess.check_call, (["touch", str(marker)],))

    checkpoint = lightning_lama_checkpoint(lama_state["generator"], tmp_path / "best.ckpt", callback_payload=Exploit())
    state = loading.read_state_dict(checkpoint)
    assert not marker.exists()
    assert all(key.startswith("generator.") for key in state)


def test_a_payload_importing_os_is_refused_wherever_it_sits(lama_state, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    inside_callbacks = lightning_lama_checkpoint(lama_state["generator"], tmp_path / "a.ckpt",
                                                 callback_payload=Exploit())
    with pytest.raises(UnsafeModelError, match=r"it imports posix\.system"):
        loading.read_state_dict(inside_callbacks)
    assert not marker.exists()


def test_a_placeholder_reaching_the_weights_is_refused(lama_state, tmp_path):
    class Payload:
        def __reduce__(self):
            return (subprocess.check_call, (["true"],))

    weights = dict(lama_state["spandrel"])
    weights["model.model.1.bn_l.running_mean"] = Payload()
    torch.save({"state_dict": weights}, tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeModelError, match=r"holds Python objects beyond tensors \(it imports .*check_call\)"):
        loading.read_state_dict(tmp_path / "evil.ckpt")
    torch.save({"state_dict": lama_state["spandrel"], "extras": {"config": Payload()}}, tmp_path / "other.ckpt")
    with pytest.raises(UnsafeModelError):  # only the known training parts may hold placeholders
        loading.read_state_dict(tmp_path / "other.ckpt")


# ----------------------------------------------------------------------------- IOPaint's MAT file


@pytest.fixture(scope="module")
def mat_file(tmp_path_factory):
    """``Places_512_FullData_G.pth`` as IOPaint loads it: the Generator's own state dict
    (``synthesis.*``, ``mapping.*``), at random weights."""
    pytest.importorskip("spandrel_extra_arches")
    from spandrel_extra_arches.architectures.MAT import MAT

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("mat") / "Places_512_FullData_G.pth"
    torch.save({k: v.contiguous() for k, v in MAT().model.state_dict().items()}, path)
    return path


def test_mat_in_iopaints_layout_is_deterministic_and_changes_only_the_hole(mat_file, tmp_path):
    image, mask = _picture(tmp_path)
    first = _cli_remove(image, mask, tmp_path / "a.png", "--remover", "mat", "--set", f"remove.model={mat_file}")
    again = _cli_remove(image, mask, tmp_path / "b.png", "--remover", "mat", "--set", f"remove.model={mat_file}")
    by_path = _cli_remove(image, mask, tmp_path / "c.png", "--remover", str(mat_file))
    assert np.array_equal(first, again) and np.array_equal(first, by_path)
    original = np.asarray(Image.open(image))
    hole = np.asarray(Image.open(mask)) > 0
    assert np.any(first != original, axis=2)[hole].mean() > 0.5


def test_mats_latent_is_iopaints():
    from clearfill.removers.mat import IOPAINT_SEED

    np.random.seed(IOPAINT_SEED)  # IOPaint: set_seed(240), build the Generator, then np.random.randn(1, 512)
    assert IOPAINT_SEED == 240
    expected = np.random.randn(1, 512)
    assert np.array_equal(np.random.RandomState(IOPAINT_SEED).randn(1, 512), expected)


def test_registry_carries_the_published_checksums():
    assert REGISTRY["mat-places512"].md5 == "8ca927835fa3f5e21d65ffcb165377ed"
    assert REGISTRY["2x-animesharpv2-mosr-sharp"].sha256 == \
        "5a69d1c681aef2251802e69131631868b451c3874e0afb46f55bd6cc820e6400"


# ----------------------------------------------------------------------------- FLUX.1 Fill single file, ComfyUI


@pytest.fixture(scope="module")
def flux_layouts(tmp_path_factory):
    """One FLUX.1 Fill at FLUX's real width (diffusers' converter needs it), in four forms:
    a diffusers folder, BFL's single transformer file, a base folder without the
    transformer's weights, and a ComfyUI models folder with BFL's/ComfyUI's files."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, T5EncoderModel

    root = tmp_path_factory.mktemp("flux")
    folder = build_tiny_flux_fill(root / "diffusers", **FLUX_WIDTH)
    transformer = FluxTransformer2DModel.from_pretrained(folder / "transformer")
    single = root / "flux1-fill-dev.safetensors"
    save_file(diffusers_to_bfl(transformer.state_dict()), str(single))
    del transformer
    base = root / "base"
    shutil.copytree(folder, base)
    for weights in (base / "transformer").glob("diffusion_pytorch_model*"):
        weights.unlink()
    configs_only = root / "configs-only"
    shutil.copytree(folder, configs_only, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    comfy = root / "ComfyUI" / "models"
    for sub in ("unet", "clip", "vae", "upscale_models", "inpaint"):
        (comfy / sub).mkdir(parents=True)
    shutil.copy(single, comfy / "unet" / "flux1-fill-dev.safetensors")
    clip = CLIPTextModel.from_pretrained(folder / "text_encoder")
    save_file(clip.state_dict(), str(comfy / "clip" / "clip_l.safetensors"))
    t5 = {k: v.contiguous() for k, v in T5EncoderModel.from_pretrained(folder / "text_encoder_2").state_dict().items()
          if k != "encoder.embed_tokens.weight"}  # tied to shared.weight; the file keeps one copy
    save_file(t5, str(comfy / "clip" / "t5xxl_fp16.safetensors"))
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    levels = len(vae.config.down_block_types)
    save_file(diffusers_vae_to_bfl(vae.state_dict(), levels), str(comfy / "vae" / "ae.safetensors"))
    return {"diffusers": folder, "single": single, "base": base, "configs_only": configs_only, "comfyui": comfy.parent}


def test_bfl_layout_is_what_diffusers_converts_back(flux_layouts):
    from diffusers import FluxTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers
    from safetensors.torch import load_file

    state = FluxTransformer2DModel.from_pretrained(flux_layouts["diffusers"] / "transformer").state_dict()
    back = convert_flux_transformer_checkpoint_to_diffusers(load_file(str(flux_layouts["single"])))
    assert set(back) == set(state) and all(torch.equal(back[key], state[key]) for key in state)


def _refine_args(*extra):
    return ["--refiner", *extra, "--set", "refine.steps=2", "--set", "resize.target_pixels=4096", "--seed", "3"]


def test_the_single_file_refines_like_the_diffusers_folder(flux_layouts, tmp_path):
    image, mask = _picture(tmp_path)
    from_folder = _cli_remove(image, mask, tmp_path / "a.png", *_refine_args(str(flux_layouts["diffusers"])))
    from_file = _cli_remove(image, mask, tmp_path / "b.png", *_refine_args(
        str(flux_layouts["single"]), "--set", f"refine.base={flux_layouts['base']}"))
    assert np.array_equal(from_folder, from_file)


def _error_line(stderr: str) -> str:
    """The one error line (the CPU warning may precede it); no traceback."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("clearfill: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_single_file_without_the_rest_names_what_is_missing(flux_layouts, tmp_path, capsys):
    image, mask = _picture(tmp_path)
    code = cli_main(["remove", str(image), "--mask", str(mask), "-o", str(tmp_path / "o.png"), "--preset", "fast",
                     *_refine_args(str(flux_layouts["single"]),
                                   "--set", f"refine.base={flux_layouts['configs_only']}")])
    err = _error_line(capsys.readouterr().err)
    assert code == 2
    assert "CLIP-L text encoder, T5-XXL text encoder, VAE" in err and "hf download" in err
    assert not (tmp_path / "o.png").exists()
    code = cli_main(["remove", str(image), "--mask", str(mask), "-o", str(tmp_path / "o.png"), "--preset", "fast",
                     *_refine_args(str(flux_layouts["single"]))])  # the default base, not in the (empty) HF cache
    err = _error_line(capsys.readouterr().err)
    assert code == 2 and "black-forest-labs/FLUX.1-Fill-dev" in err


def test_a_refiner_that_cannot_load_falls_back_with_the_reason(flux_layouts, tmp_path):
    image, mask = _picture(tmp_path)
    result = clearfill.remove(image, mask, "reference", device="cpu", **{
        "refine.model": str(flux_layouts["single"]), "refine.base": str(flux_layouts["configs_only"]),
        "refine.on_cpu": True, "remove.method": "telea", "resize.upscaler": None})
    assert not result.ran("refine") and "T5-XXL text encoder" in result.skipped["refine"]


def test_every_library_error_while_loading_becomes_a_clearfill_error(flux_layouts, monkeypatch):
    import diffusers

    from clearfill.models import refiner

    def broken(*args, **kwargs):
        raise Exception("Failed to load CLIPTextModel. Weights for this component appear to be missing")

    monkeypatch.setattr(diffusers.FluxFillPipeline, "from_pretrained", broken)
    with pytest.raises(ModelLoadError, match="Failed to load CLIPTextModel"):
        refiner.load_pipeline(str(flux_layouts["single"]), dtype=torch.float32, base=str(flux_layouts["base"]))

    def unreachable(*args, **kwargs):
        import httpx

        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(diffusers.FluxFillPipeline, "from_pretrained", unreachable)
    with pytest.raises(ModelNotAvailableError, match="Hugging Face Hub cannot be reached"):
        refiner.load_pipeline("someone/FLUX.1-Fill-copy", dtype=torch.float32)


@pytest.fixture
def comfyui(flux_layouts, lama_state, monkeypatch):
    """The ComfyUI folder with big-lama (IOPaint's TorchScript, as the inpaint nodes keep it) and
    the MoSR upscaler beside the FLUX files; the registry's checksum made to match our big-lama."""
    from spandrel.architectures.LaMa import LaMa
    from spandrel.architectures.MoSR import MoSR

    models = flux_layouts["comfyui"] / "models"
    lama_file = models / "inpaint" / "big-lama.pt"
    if not lama_file.exists():
        model = LaMa(in_nc=4, out_nc=3).eval()
        model.load_state_dict(lama_state["spandrel"])
        with torch.no_grad():
            traced = torch.jit.trace(model, (torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)), check_trace=False)
        traced.save(str(lama_file))
        torch.save(MoSR(upscale=2, n_block=2, dim=16).state_dict(),
                   models / "upscale_models" / "2x-AnimeSharpV2_MoSR_Sharp.pth")
    monkeypatch.setitem(REGISTRY, "big-lama", REGISTRY["big-lama"].__class__(
        **{**REGISTRY["big-lama"].__dict__, "md5": hashlib.md5(lama_file.read_bytes()).hexdigest()}))
    monkeypatch.setenv("CLEARFILL_COMFYUI_DIR", str(flux_layouts["comfyui"]))
    return flux_layouts["comfyui"]


def test_models_list_shows_the_comfyui_files(comfyui, capsys):
    assert cli_main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    for expected in ("flux1-fill-dev.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors", "ae.safetensors",
                     "big-lama.pt", "2x-AnimeSharpV2_MoSR_Sharp.pth", str(comfyui)):
        assert expected in listing, expected


def test_comfyui_files_are_used_for_registry_names(comfyui, flux_layouts, lama_state, tmp_path):
    image, mask = _picture(tmp_path)
    torch.save(lama_state["spandrel"], tmp_path / "lama.pth")
    from_comfyui = _cli_remove(image, mask, tmp_path / "a.png", "--remover", "lama")
    from_file = _cli_remove(image, mask, tmp_path / "b.png", "--remover", str(tmp_path / "lama.pth"))
    assert np.abs(from_comfyui.astype(int) - from_file).max() <= 1  # TorchScript vs eager: float rounding
    refined = _cli_remove(image, mask, tmp_path / "c.png", *_refine_args(
        "flux1-fill-dev", "--set", f"refine.base={flux_layouts['configs_only']}", "--remover", "telea"))
    reference = _cli_remove(image, mask, tmp_path / "d.png", *_refine_args(
        str(flux_layouts["diffusers"]), "--remover", "telea"))
    assert np.array_equal(refined, reference)


def test_the_comfyui_folder_may_be_given_on_the_command_line(flux_layouts, monkeypatch, capsys):
    monkeypatch.setenv("CLEARFILL_COMFYUI_DIR", "")  # the CLI sets it from --comfyui-dir; undone after the test
    assert cli_main(["models", "list", "--comfyui-dir", str(flux_layouts["comfyui"])]) == 0
    assert "flux1-fill-dev.safetensors" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the GPU check, dry run


def test_the_gpu_reference_benchmark_runs_tiny_on_the_cpu():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_reference.py"), "--tiny", "--steps", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if " total " in line]
    assert len(lines) == 4 and all("refine" in line and "skipped" not in line for line in lines)


def test_cached_prompt_embeddings_do_not_keep_the_text_encoders_alive():
    """The embeddings are computed outside the pipeline's own no_grad: with autograd on they
    kept T5's graph, and so its weights, alive once the refiner itself was gone (measured
    13 GiB on an H200 with the full-size T5-XXL)."""
    import gc
    import weakref

    from tiny_flux import flux_fill_pipeline, tiny_configs

    from clearfill.models.refiner import Refiner

    pipeline = flux_fill_pipeline(tiny_configs(vae_levels=4))
    t5_weight = weakref.ref(next(pipeline.text_encoder_2.parameters()))
    refiner = Refiner.from_pipeline(pipeline, device="cpu")
    del pipeline
    embeddings = refiner._prompt_embeddings("")
    assert all(not tensor.requires_grad and tensor.grad_fn is None for tensor in embeddings.values())
    del refiner
    gc.collect()
    assert t5_weight() is None  # the embeddings kept here hold no reference to T5's weights
