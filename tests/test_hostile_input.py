"""Hostile and careless input: each gets one clear line and exit 2 (never exit 1, a
traceback or a hang), and nothing clearfill writes lands on an input."""

import hashlib
import io as stdio
import json
import os
import threading
import warnings

import cv2
import numpy as np
import pytest
from helpers import disk_mask, photo_like
from PIL import Image

import clearfill
from clearfill import io
from clearfill.cli import main
from clearfill.errors import ImageTooLargeError, InvalidConfigError, InvalidInputError

H, W = 48, 64


@pytest.fixture
def files(tmp_path):
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(photo_like(np.random.default_rng(3), H, W)).save(image)
    Image.fromarray(disk_mask(H, W, 32, 24, 8)).save(mask)
    return image, mask


def refused(capsys, *argv, fragment: str) -> None:
    """The command exits 2 with one line naming the problem."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines[-1].startswith("clearfill: error: ") and fragment in lines[-1], err
    assert "Traceback" not in err


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ----------------------------------------------------------------------------- files that are not files


def test_a_fifo_is_refused_before_anything_reads_it(capsys, files, tmp_path):
    image, mask = files
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = {}

    def attempt():
        outcome["image"] = main(["remove", str(fifo), "--mask", str(mask), "-o", str(tmp_path / "o.png"),
                                 "--preset", "fast"])
        outcome["mask"] = main(["remove", str(image), "--mask", str(fifo), "-o", str(tmp_path / "o.png"),
                                "--preset", "fast"])
        outcome["lasso"] = main(["mask", str(image), "--lasso", str(fifo), "-o", str(tmp_path / "m.png")])

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(30)
    hung = worker.is_alive()
    while worker.is_alive():  # a reader blocked on the FIFO: give it an end, so the test can end too
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader at this moment
            pass
        worker.join(0.1)
    assert not hung, "reading a FIFO hung"
    assert outcome == {"image": 2, "mask": 2, "lasso": 2}
    assert "not a regular file" in capsys.readouterr().err


def test_a_loop_of_links_is_one_line(capsys, files, tmp_path):
    _, mask = files
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    refused(capsys, "remove", tmp_path / "a.png", "--mask", mask, "-o", tmp_path / "o.png", "--preset", "fast",
            fragment="symbolic links")


# ----------------------------------------------------------------------------- decoding work


def _progressive_jpeg(scans: int) -> bytes:
    """A real progressive JPEG whose last scan is repeated: every copy is decoded over the
    whole image again."""
    buffer = stdio.BytesIO()
    Image.fromarray(photo_like(np.random.default_rng(0), 64, 64)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    end, last = data.rindex(b"\xff\xd9"), data.rindex(b"\xff\xda")
    plain = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * max(0, scans - plain) + b"\xff\xd9"


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_and_an_ordinary_one_reads():
    with pytest.raises(InvalidInputError, match="progressive JPEG of 3000 scans"):
        io.load_image(stdio.BytesIO(_progressive_jpeg(3000)))
    assert io.load_image(stdio.BytesIO(_progressive_jpeg(0))).size == (64, 64)


def test_pillows_own_limit_is_never_changed_and_ours_replaces_it(monkeypatch):
    """Pillow's bomb limit is process-wide: other threads rely on it while clearfill opens
    a file. clearfill's ``max_pixels`` decides for its own calls."""
    seen = []
    original = Image.open
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # a caller's strict limit

    def watching(*args, **kwargs):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return original(*args, **kwargs)

    monkeypatch.setattr(Image, "open", watching)
    buffer = stdio.BytesIO()
    Image.fromarray(photo_like(np.random.default_rng(1), 60, 80)).save(buffer, "PNG")  # 4800 px: over 2 x 1000
    loaded = io.load_image(stdio.BytesIO(buffer.getvalue()), max_pixels=None)
    assert loaded.size == (80, 60) and seen and set(seen) == {1_000}
    with pytest.raises(ImageTooLargeError, match="over the limit of"):
        io.load_image(stdio.BytesIO(buffer.getvalue()), max_pixels=4_000)
    assert Image.MAX_IMAGE_PIXELS == 1_000


# ----------------------------------------------------------------------------- process-wide state


def test_opencvs_random_generator_of_the_caller_is_left_alone():
    def next_numbers():
        values = np.zeros(4)
        cv2.randu(values, 0, 1000)
        return values.ravel().tolist()

    cv2.setRNGSeed(42)
    expected = next_numbers()
    picture = photo_like(np.random.default_rng(2), 120, 160).astype(np.float32) / 255
    cv2.setRNGSeed(42)
    first = clearfill.select(picture, box=(40, 30, 80, 60))
    from clearfill.detect.text import _centres

    _centres(np.random.default_rng(0).random((50, 3)).astype(np.float32))
    assert next_numbers() == expected
    assert np.array_equal(clearfill.select(picture, box=(40, 30, 80, 60)), first)  # still repeatable


def test_the_command_line_leaves_warnings_as_it_found_them(capsys, files, tmp_path):
    image, mask = files
    before_show, before_filters = warnings.showwarning, list(warnings.filters)
    assert main(["remove", str(image), "--mask", str(mask), "-o", str(tmp_path / "o.png"), "--preset", "fast"]) == 0
    assert warnings.showwarning is before_show and warnings.filters == before_filters


def test_files_get_the_umask_and_importing_clearfill_never_changes_it(tmp_path, files, monkeypatch):
    import importlib

    import clearfill.io.writing as writing

    calls = []
    real_umask = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    importlib.reload(writing)
    monkeypatch.setattr(os, "umask", real_umask)
    assert calls == []
    image, _ = files
    previous = os.umask(0o027)
    try:
        clearfill.io.save_picture(tmp_path / "p.png", np.zeros((4, 4, 3), np.float32))
    finally:
        os.umask(previous)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o640


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize("setting", ["crop.expand_factor=nan", "crop.padding=inf", "mask.grow_pixels=-inf",
                                     "crop.blend_pixels=1e9", "crop.expand_pixels=1e400", "resize.target_pixels=1e12",
                                     "refine.steps=100000", "remove.patch_size=1e9"])
def test_non_finite_and_absurd_settings_are_refused_by_name(capsys, files, tmp_path, setting):
    image, mask = files
    refused(capsys, "remove", image, "--mask", mask, "-o", tmp_path / "o.png", "--preset", "offline", "--set",
            setting, fragment=setting.split("=")[0].split(".")[-1])


def test_remover_options_must_be_a_mapping(files):
    image, mask = files
    with pytest.raises(InvalidConfigError, match="remove.options must be a mapping"):
        clearfill.remove(image, mask, "fast", **{"remove.options": [1, 2]})


# ----------------------------------------------------------------------------- selections


@pytest.mark.parametrize("argv, fragment", [
    (["--box", "0,0,64,48"], "covers the whole image"),
    (["--box=-10,-10,100000,100000"], "covers the whole image"),
    (["--box", "100,100,5,5"], "outside the image (64x48)"),
    (["--point", "nan,nan"], "finite"),
    (["--point", "inf,5"], "finite"),
    (["--point", "1e300,5"], "outside the image (64x48)"),
])
def test_selections_that_give_grabcut_nothing_to_work_with(capsys, files, tmp_path, argv, fragment):
    image, _ = files
    refused(capsys, "mask", image, *argv, "-o", tmp_path / "m.png", fragment=fragment)


@pytest.mark.parametrize("selection", [{"box": (0, 0, 1, 1)}, {"points": [(0, 0, True)]}])
def test_selecting_on_a_one_pixel_image_is_refused(selection):
    with pytest.raises(InvalidInputError, match="too small to select"):
        clearfill.select(np.zeros((1, 1, 3), np.float32), **selection)


@pytest.mark.parametrize("lasso, fragment", [
    ([[0, 0], [1e12, 0], [0, 1e12]], "far outside"),
    ([[0, 0], [float("nan"), 0], [0, 40]], "finite"),
    ([[0, 0], [float("inf"), 0], [0, 40]], "finite"),
    ([[-1, -1], [65, -1], [65, 49], [-1, 49]], "covers the whole image"),
])
def test_lassos_far_off_the_image_or_not_numbers_are_refused_at_once(capsys, files, tmp_path, lasso, fragment):
    import time

    image, _ = files
    path = tmp_path / "lasso.json"
    path.write_text(json.dumps(lasso))  # NaN and Infinity as Python's json writes them
    started = time.monotonic()
    refused(capsys, "mask", image, "--lasso", path, "-o", tmp_path / "m.png", fragment=fragment)
    assert time.monotonic() - started < 5


def test_a_selection_the_server_is_sent_covering_everything_is_a_400():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from clearfill.server import ServerSettings, create_app

    buffer = stdio.BytesIO()
    Image.fromarray(photo_like(np.random.default_rng(0), H, W)).save(buffer, "PNG")
    app = create_app(ServerSettings(preset="fast", isolation="thread"))
    with TestClient(app, base_url="http://localhost") as client:
        for select in ({"box": [0, 0, W, H]}, {"points": [[1e300, 5, True]]}, {"lasso": [[0, 0], [1e12, 0], [0, 9]]}):
            answer = client.post("/v1/mask", files={"image": ("p.png", buffer.getvalue(), "image/png")},
                                 data={"options": json.dumps({"select": select})})
            assert answer.status_code == 400 and answer.json()["code"] == "bad_input", answer.text


# ----------------------------------------------------------------------------- where results go


def test_save_stages_never_overwrites_the_input_or_the_mask(capsys, files, tmp_path):
    image, mask = files
    stages = tmp_path / "stages"
    stages.mkdir()
    named_like_a_stage = stages / "1-mask.png"
    named_like_a_stage.write_bytes(image.read_bytes())
    sheet_mask = stages / "sheet.png"
    sheet_mask.write_bytes(mask.read_bytes())
    kept = {path: digest(path) for path in (named_like_a_stage, sheet_mask)}
    refused(capsys, "remove", named_like_a_stage, "--mask", mask, "-o", tmp_path / "o.png", "--preset", "fast",
            "--save-stages", stages, fragment="would overwrite the image")
    refused(capsys, "remove", image, "--mask", sheet_mask, "-o", tmp_path / "o.png", "--preset", "fast",
            "--save-stages", stages, fragment="would overwrite the mask")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "sheet.png").symlink_to(image)  # a stage name that is a link to the input
    refused(capsys, "remove", image, "--mask", mask, "-o", tmp_path / "o.png", "--preset", "fast",
            "--save-stages", linked, fragment="is the image file")
    assert {path: digest(path) for path in kept} == kept and digest(image) == digest(linked / "sheet.png")


@pytest.fixture
def batch_folders(tmp_path, files):
    image, mask = files
    for folder in ("in", "masks", "out"):
        (tmp_path / folder).mkdir()
    (tmp_path / "in" / "a.png").write_bytes(image.read_bytes())
    (tmp_path / "masks" / "a.png").write_bytes(mask.read_bytes())
    return tmp_path


def test_a_ledger_linked_to_an_input_is_refused_and_the_input_unchanged(capsys, batch_folders):
    root = batch_folders
    source = root / "in" / "a.png"
    before = digest(source)
    (root / "out" / ".clearfill-batch.jsonl").symlink_to(source)
    refused(capsys, "batch", root / "in", "--masks", root / "masks", "-o", root / "out", "--preset", "fast",
            "--no-progress", fragment="is a link")
    assert digest(source) == before and not (root / "out" / "a.png").exists()


def test_a_report_linked_to_an_input_is_refused(capsys, batch_folders):
    root = batch_folders
    source = root / "in" / "a.png"
    before = digest(source)
    (root / "report.jsonl").symlink_to(source)
    refused(capsys, "batch", root / "in", "--masks", root / "masks", "-o", root / "out", "--preset", "fast",
            "--no-progress", "--report", root / "report.jsonl", fragment="a.png")
    assert digest(source) == before


def _manifest(root, output: str, name="m.csv") -> str:
    path = root / name
    path.write_text(f"image,mask,output\nin/a.png,masks/a.png,{output}\n")
    return str(path)


@pytest.mark.parametrize("output, fragment", [
    ("x" * 300 + ".png", "names the file system can hold"),
    ("o\x00.png", "NUL byte"),
    ("y" * 1_000_000 + ".png", "not a CSV clearfill can read"),
    ("out", "outputs must be files"),  # an existing folder
])
def test_manifest_outputs_that_cannot_be_files_are_refused_up_front(capsys, batch_folders, output, fragment):
    refused(capsys, "batch", _manifest(batch_folders, output), "--preset", "fast", "--no-progress",
            fragment=fragment)


def test_a_three_channel_lama_file_is_refused_when_loaded(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    from spandrel.architectures.LaMa import LaMa

    from clearfill.errors import ModelLoadError

    path = tmp_path / "lama-rgb-only.pth"
    torch.save(LaMa(in_nc=3, out_nc=3).state_dict(), path)  # spandrel's own layout, no mask channel
    with pytest.raises(ModelLoadError, match="2-channel images"):
        clearfill.removers.create("lama", {"model": str(path)}, device="cpu")
