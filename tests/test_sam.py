"""SAM 2.1 through transformers, at random weights in the publisher's own layout:
facebook/sam2.1-hiera-tiny ships ``Sam2VideoModel`` weights (config model_type
"sam2_video", processor Sam2VideoProcessor), whose default config is Hiera-Tiny.
Saved as safetensors, loaded by clearfill's own loader into ``Sam2Model`` (every
weight must come from the file), run from a box, a lasso and clicks, with the image
embedding computed once per image."""

import json

import numpy as np
import pytest

import clearfill
from clearfill.cli import main
from clearfill.detect import sam as sam_module
from clearfill.errors import ModelLoadError, ModelNotAvailableError

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam2.1-random")
    published = transformers.Sam2VideoModel(transformers.Sam2VideoConfig()).eval()
    published.save_pretrained(folder, safe_serialization=True)
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "sam2_video"
    assert config["vision_config"]["backbone_config"]["blocks_per_stage"] == [1, 2, 7, 2]  # Hiera-Tiny
    published_weights[str(folder)] = published.state_dict()
    return folder


published_weights: dict = {}  # folder -> the state dict saved there


def test_every_weight_comes_from_the_published_file(sam_folder):
    saved = published_weights[str(sam_folder)]
    loaded = sam_module.SamSelector(str(sam_folder)).model.state_dict()
    assert loaded and all(torch.equal(tensor, saved[name]) for name, tensor in loaded.items())


def test_a_checkpoint_missing_weights_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "partial"
    transformers.Sam2VideoModel(transformers.Sam2VideoConfig()).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({name: tensor for name, tensor in weights.items() if "mask_decoder" not in name},
              folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="not a SAM 2 checkpoint: it lacks"):
        sam_module.SamSelector(str(folder))


def test_sam_runs_from_a_box_lasso_and_clicks_and_encodes_each_image_once(sam_folder):
    rng = np.random.default_rng(0)
    picture = rng.random((240, 320, 3)).astype(np.float32)
    selector = sam_module.SamSelector(str(sam_folder))
    selections = [clearfill.detect.as_selection({"box": (40, 30, 120, 90)}),
                  clearfill.detect.as_selection({"lasso": [(40, 30), (200, 40), (150, 200)]}),
                  clearfill.detect.as_selection({"points": [(100, 80, True), (10, 10, False)]})]
    masks = [selector.select(picture, selection) for selection in selections]
    assert all(mask.shape == (240, 320) and mask.dtype == bool for mask in masks)
    assert selector.encoded == 1  # three prompts, one image: the encoder ran once
    selector.select(picture[::-1].copy(), selections[0])
    assert selector.encoded == 2


def test_sam_is_chosen_when_its_weights_are_here_and_grabcut_otherwise(sam_folder, tmp_path, monkeypatch):
    assert sam_module.sam_present(str(sam_folder))
    assert not sam_module.sam_present(str(tmp_path / "missing"))
    calls = []
    monkeypatch.setattr(sam_module.SamSelector, "select", lambda self, rgb, selection: calls.append(1) or
                        np.zeros(rgb.shape[:2], bool))
    picture = np.full((120, 160, 3), 0.2, np.float32)
    picture[30:70, 30:70] = (0.9, 0.8, 0.1)
    clearfill.select(picture, box=(20, 20, 60, 60), model=str(sam_folder))
    assert calls == [1]
    found = clearfill.select(picture, box=(20, 20, 60, 60), method="grabcut", model=str(sam_folder))
    assert calls == [1] and found.any()


def test_missing_or_pickled_sam_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="SAM weights not found"):
        sam_module.SamSelector(str(tmp_path / "nowhere"))
    folder = tmp_path / "pickled"  # a pickled checkpoint only: never unpickled
    model = transformers.Sam2Model(transformers.Sam2Config())
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelNotAvailableError, match="SAM weights not found"):
        sam_module.SamSelector(str(folder))


def test_cli_mask_with_sam(sam_folder, tmp_path):
    from PIL import Image

    source = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(2).random((96, 128, 3)) * 255).astype(np.uint8)).save(source)
    out = tmp_path / "mask.png"
    assert main(["mask", str(source), "--box", "10,10,50,40", "--method", "sam", "--sam-model", str(sam_folder),
                 "-o", str(out)]) == 0
    assert Image.open(out).size == (128, 96)
