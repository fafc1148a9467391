"""The command line: exit codes and one-line messages for every kind of bad input."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import disk_mask, photo_like
from PIL import Image

from clearfill.cli import main

H, W = 40, 56


@pytest.fixture
def files(tmp_path, rng):
    image = tmp_path / "photo.png"
    Image.fromarray(photo_like(rng, H, W)).save(image)
    mask = tmp_path / "mask.png"
    Image.fromarray(disk_mask(H, W, 28, 20, 7)).save(mask)
    return image, mask


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line_error(code, err, fragment):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("clearfill: error: ") and fragment in lines[-1], err
    assert "Traceback" not in err


def test_remove_writes_the_output_and_says_what_ran(capsys, files, tmp_path):
    image, mask = files
    out = tmp_path / "out.png"
    code, err = run(capsys, "remove", image, "--mask", mask, "-o", out, "--preset", "fast", "-v")
    assert code == 0 and out.exists()
    assert "removed with telea (requested)" in err and "stitch" in err
    before, after = np.asarray(Image.open(image)), np.asarray(Image.open(out))
    hole = disk_mask(H, W, 28, 20, 7) > 0
    assert not np.array_equal(before[hole], after[hole])


def test_save_stages_writes_every_stage_picture_and_a_sheet(capsys, files, tmp_path):
    image, mask = files
    stages = tmp_path / "stages"
    code, _ = run(capsys, "remove", image, "--mask", mask, "-o", tmp_path / "o.png", "--save-stages", stages,
                  "--preset", "offline")
    assert code == 0
    names = sorted(p.name for p in stages.iterdir())
    assert names == ["1-mask.png", "2-removed.png", "3-crop.png", "4-resized.png", "6-stitched.png", "sheet.png"]
    sheet = Image.open(stages / "sheet.png")
    assert sheet.width > 5 * sheet.height  # six tiles side by side (the skipped refine one grey)


@pytest.mark.parametrize("problem, fragment", [
    ("missing_image", "image not found"),
    ("missing_mask", "mask not found"),
    ("not_an_image", "not an image"),
    ("truncated", "truncated or corrupt"),
    ("too_large", "over the limit"),
    ("empty_mask", "marks nothing to remove"),
    ("full_mask", "mask covers the whole image"),
    ("size_mismatch", "pass --resize-mask"),
    ("bad_extension", "cannot tell the output format"),
    ("bad_set", "crop: unknown parameter 'width'"),
    ("bad_remover", "unknown remover 'magic'"),
    ("output_is_input", "is the image file; clearfill never replaces its input"),
    ("output_is_mask", "is the mask file; clearfill never replaces its input"),
    ("output_is_a_link_to_the_image", "is the image file"),
    ("output_is_a_folder", "it is a folder"),
    ("output_under_a_file", "is a file, not a folder"),
    ("stages_is_a_file", "cannot write the folder"),
])
def test_bad_input_gives_exit_2_and_one_line(capsys, files, tmp_path, problem, fragment):
    image, mask = files
    out = tmp_path / "out.png"
    extra = []
    if problem == "missing_image":
        image = tmp_path / "nope.png"
    elif problem == "missing_mask":
        mask = tmp_path / "nope.png"
    elif problem == "not_an_image":
        image = tmp_path / "text.jpg"
        image.write_text("hello")
    elif problem == "truncated":
        data = image.read_bytes()
        image = tmp_path / "cut.png"
        image.write_bytes(data[: len(data) // 2])
    elif problem == "too_large":
        extra = ["--max-pixels", H * W - 1]
    elif problem == "empty_mask":
        Image.new("L", (W, H), 0).save(mask)
    elif problem == "full_mask":
        Image.new("L", (W, H), 255).save(mask)
    elif problem == "size_mismatch":
        Image.new("L", (W + 1, H), 255).save(mask)
    elif problem == "bad_extension":
        out = tmp_path / "out.xyz"
    elif problem == "bad_set":
        extra = ["--set", "crop.width=3"]
    elif problem == "bad_remover":
        extra = ["--remover", "magic"]
    elif problem == "output_is_input":
        out = image
    elif problem == "output_is_mask":
        out = mask
    elif problem == "output_is_a_link_to_the_image":
        out = tmp_path / "link.png"
        out.symlink_to(image)
    elif problem == "output_is_a_folder":
        out = tmp_path / "folder.png"
        out.mkdir()
    elif problem == "output_under_a_file":
        out = image / "out.png"
    elif problem == "stages_is_a_file":
        stages = tmp_path / "stages.txt"
        stages.write_text("not a folder")
        extra = ["--save-stages", stages]
    before = [path.read_bytes() if path.is_file() else None for path in (image, mask)]
    code, err = run(capsys, "remove", image, "--mask", mask, "-o", out, *extra)
    assert_one_line_error(code, err, fragment)
    assert [path.read_bytes() if path.is_file() else None for path in (image, mask)] == before  # never touched
    if problem not in ("output_is_input", "output_is_mask", "output_is_a_link_to_the_image", "output_is_a_folder"):
        assert not out.exists()  # checked before the work: nothing written


def test_empty_mask_copies_the_image_when_allowed(capsys, files, tmp_path):
    image, mask = files
    Image.new("L", (W, H), 0).save(mask)
    out = tmp_path / "same.png"
    code, _ = run(capsys, "remove", image, "--mask", mask, "-o", out, "--allow-empty-mask")
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(image)))


def test_the_input_cannot_be_replaced_even_when_asked(capsys, files):
    image, mask = files
    before = image.read_bytes()
    with pytest.raises(SystemExit) as exit:
        run(capsys, "remove", image, "--mask", mask, "-o", image, "--overwrite", "--preset", "fast")
    assert exit.value.code == 2 and "unrecognized arguments: --overwrite" in capsys.readouterr().err
    code, err = run(capsys, "remove", image, "--mask", mask, "-o", image, "--preset", "fast")
    assert_one_line_error(code, err, "never replaces its input")
    assert image.read_bytes() == before


def test_an_unwritable_output_folder_fails_before_the_work(capsys, files, tmp_path, monkeypatch):
    image, mask = files
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = __import__("os").access
    monkeypatch.setattr("os.access", lambda path, mode: False if str(path) == str(locked) else real_access(path, mode))
    monkeypatch.setattr("clearfill.api.remove", lambda *a, **k: pytest.fail("the work started"))
    code, err = run(capsys, "remove", image, "--mask", mask, "-o", locked / "out.png")
    assert_one_line_error(code, err, f"no permission to write in {locked}")


def test_resize_mask_accepts_a_mask_of_another_size(capsys, files, tmp_path):
    image, mask = files
    Image.fromarray(disk_mask(H * 2, W * 2, 56, 40, 14)).save(mask)
    code, _ = run(capsys, "remove", image, "--mask", mask, "-o", tmp_path / "o.png", "--resize-mask")
    assert code == 0


def test_argument_errors_exit_2(capsys, files, tmp_path):
    image, _ = files
    with pytest.raises(SystemExit) as exit_info:
        main(["remove", str(image), "--mask"])  # --mask without its file, -o missing
    assert exit_info.value.code == 2
    assert "expected one argument" in capsys.readouterr().err
    code = main(["remove", str(image), "-o", str(tmp_path / "o.png")])  # neither --mask nor --detect
    assert code == 2 and "give --mask (what to remove) or --detect text" in capsys.readouterr().err


def test_the_installed_entry_point_runs(files, tmp_path):
    image, mask = files
    out = tmp_path / "o.jpg"
    done = subprocess.run([sys.executable, "-m", "clearfill.cli", "remove", str(image), "--mask", str(mask),
                           "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).format == "JPEG"
