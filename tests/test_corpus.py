"""Every file of the corpus (tests/corpus/build.py: unusual modes, formats and
metadata, broken and hostile files, bad destinations) through the CLI and the
library. Failures: exit 2, one line, no traceback, nothing at the output path,
the inputs untouched. Successes: the output read back by Pillow or OpenCV (not
by clearfill) in the input's mode, with its ICC profile, EXIF and alpha, and
every pixel outside the hole identical to the input's."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from corpus.build import MAKE, Case, build
from PIL import Image

import clearfill
from clearfill.cli import main
from clearfill.errors import ClearfillError, ClearfillWarning

CORPUS = Path(tempfile.mkdtemp(prefix="clearfill-corpus-"))
atexit.register(shutil.rmtree, CORPUS, ignore_errors=True)
CASES = build(CORPUS)
NEAR_THE_MASK = 14  # pixels: the fast preset's grown, feathered hole stays within this of the painted mask
TIFF_LAYOUT_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 339}
CLI_ONLY = ("marks nothing", "never replaces", "it is a folder", "is a file, not", "cannot write the folder",
            "--quality", "unknown parameter")


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 60
    assert sum(case.ok for case in CASES) >= 30 and sum(not case.ok for case in CASES) >= 30
    assert len({case.mode for case in CASES if case.ok}) >= 12


def destination(case: Case, folder: Path) -> Path:
    if case.output_is == "image":
        return case.image
    if case.output_is == "mask":
        return case.mask
    if case.output_is == "folder":
        (folder / "a-folder.png").mkdir()
        return folder / "a-folder.png"
    if case.output_is == "under-file":
        (folder / "a-file").write_text("x")
        return folder / "a-file" / "out.png"
    return folder / case.output


def png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR."""
    data = path.read_bytes()
    return data[24], data[25]


def read_independently(path: Path, reader: str) -> np.ndarray:
    if reader == "cv2":
        values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        if values.ndim == 3:
            values = values[..., [2, 1, 0, 3][: values.shape[2]]] if values.shape[2] != 2 else values
        return values
    return np.asarray(Image.open(path))


def output_mode_is(case: Case, out: Path) -> None:
    if case.reader == "pillow":
        assert Image.open(out).mode == case.mode, (Image.open(out).mode, case.mode)
        return
    if out.suffix == ".png":
        channels = {"RGB;16": 2, "RGBA;16": 6, "LA;16": 4}[case.mode]
        assert png_header(out) == (16, channels)
    else:
        import tifffile

        page = tifffile.TiffFile(out).pages[0]
        assert page.dtype == np.uint16 and page.samplesperpixel == {"RGB;16": 3, "RGBA;16": 4}[case.mode]


def input_values(case: Case) -> np.ndarray:
    if case.expected_upright is not None:
        return case.expected_upright
    values = read_independently(case.image, case.reader)
    if case.mode == "LA;16":
        values = values[..., [0, 3]]
    return values


def output_values(case: Case, out: Path) -> np.ndarray:
    values = read_independently(out, case.reader)
    if case.mode == "LA;16":  # OpenCV spreads gray+alpha over four channels
        values = values[..., [0, 3]]
    return values


def check_success(case: Case, out: Path, hole: np.ndarray | None = None) -> None:
    output_mode_is(case, out)
    written = Image.open(out)
    if case.icc is not None:
        assert written.info.get("icc_profile") == case.icc
    exif = written.getexif()
    if case.exif_make:
        assert exif.get(0x010F) == MAKE
        assert exif.get_ifd(0x8769).get(0x829A) == (1, 125)
    if written.format != "TIFF":
        assert not set(exif) & TIFF_LAYOUT_TAGS, "a TIFF's own layout tags were written as EXIF"
    assert 0x0112 not in exif  # the pixels are upright: no orientation left to apply
    if case.mode == "P" and "transparency" in Image.open(case.image).info:
        assert written.info.get("transparency") == Image.open(case.image).info["transparency"]
    if not case.lossless:
        return
    before, after = input_values(case), output_values(case, out)
    assert before.shape == after.shape and before.dtype == after.dtype, (before.shape, after.shape)
    differ = (before != after) if before.ndim == 2 else np.any(before != after, axis=2)
    assert differ.any(), "nothing was filled"
    if hole is None:
        painted = Image.open(case.mask)
        painted = painted.getchannel("A") if painted.mode == "RGBA" else painted.convert("L")
        mask = np.asarray(painted.resize(differ.shape[::-1])) > 0
        kernel = np.ones((2 * NEAR_THE_MASK + 1,) * 2, np.uint8)
        hole = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    assert not differ[~hole].any(), f"{int(differ[~hole].sum())} pixels changed outside the hole"
    if case.alpha:
        assert np.array_equal(before[..., -1], after[..., -1]), "alpha changed"


def inputs_of(case: Case) -> dict:
    return {path: path.read_bytes() for path in (case.image, case.mask) if path.is_file()}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_corpus_through_the_cli(case: Case, tmp_path, capsys):
    out = destination(case, tmp_path)
    before = inputs_of(case)
    code = main(["remove", str(case.image), "--mask", str(case.mask), "-o", str(out), "--preset", "fast",
                 *case.args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    if case.ok:
        assert code == 0, err
        assert all(line.startswith(("clearfill: warning: ", "wrote ")) for line in lines), err
        assert (case.warning in err) if case.warning else "warning" not in err, err
        check_success(case, out)
    else:
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("clearfill: error: "), err
        assert case.fragment in lines[0], err
        if not case.output_is:
            assert not out.exists() and not list(tmp_path.glob(".*.part"))
    assert inputs_of(case) == before


LIBRARY_CASES = [case for case in CASES if not any(fragment in case.fragment for fragment in CLI_ONLY)]


@pytest.mark.parametrize("case", LIBRARY_CASES, ids=lambda case: case.name)
def test_corpus_through_the_library(case: Case, tmp_path):
    out = tmp_path / case.output
    resize = "--resize-mask" in case.args
    if case.ok:
        with pytest.warns(ClearfillWarning, match=case.warning) if case.warning else contextlib.nullcontext():
            result = clearfill.remove(case.image, case.mask, "fast", resize_mask=resize)
        result.save(out)
        assert not result.changed[~result.hole].any()
        check_success(case, out, hole=result.hole)
        return
    with pytest.raises(ClearfillError) as error:
        clearfill.remove(case.image, case.mask, "fast", resize_mask=resize).save(out)
    message = str(error.value)
    assert case.fragment.split(";")[0] in message and "\n" not in message, message
    assert not out.exists()


def test_the_cli_adds_its_own_hint_to_a_neutral_library_message(tmp_path, capsys):
    case = next(case for case in CASES if case.name == "mask-wrong-size.png")
    with pytest.raises(ClearfillError) as error:
        clearfill.remove(case.image, case.mask, "fast")
    assert "--" not in str(error.value) and error.value.setting == "resize_mask"
    assert main(["remove", str(case.image), "--mask", str(case.mask), "-o", str(tmp_path / "o.png")]) == 2
    assert "pass --resize-mask" in capsys.readouterr().err


def test_cmyk_with_a_black_plate_reads_dark_and_keeps_its_plates(tmp_path):
    case = next(case for case in CASES if case.name == "cmyk.tif")
    loaded = clearfill.io.load_image(case.image)
    plates = np.asarray(Image.open(case.image))
    assert plates[..., 3].min() == 60  # K != 0 everywhere
    expected = (255 - plates[..., :3].astype(float)) * (255 - 60) / 255  # the black plate darkens every colour
    assert np.abs(loaded.rgb * 255 - expected).max() <= 1.0
    assert np.array_equal(np.rint(loaded.rgb * 255), np.asarray(Image.open(case.image).convert("RGB")))
    result = clearfill.remove(case.image, case.mask, "fast")
    written = np.asarray(Image.open(result.save(tmp_path / "out.tif")))
    assert np.array_equal(written[~result.hole], plates[~result.hole])  # K kept verbatim outside the hole


def test_float_and_int32_tiffs_keep_their_sample_format_and_values(tmp_path):
    import tifffile

    for name, dtype in (("float-hdr.tif", np.float32), ("int32.tif", np.int32)):
        case = next(case for case in CASES if case.name == name)
        result = clearfill.remove(case.image, case.mask, "fast")
        out = result.save(tmp_path / name)
        before, after = tifffile.imread(case.image), np.asarray(Image.open(out))
        assert after.dtype == dtype and tifffile.TiffFile(out).pages[0].dtype == dtype
        assert np.array_equal(after[~result.hole], before[~result.hole])
        filled = after[result.hole]
        assert before.min() <= filled.min() and filled.max() <= before.max()  # the fill in the image's own range


def test_sixteen_bit_orientation_is_applied_to_the_pixels():
    case = next(case for case in CASES if case.name == "orientation-6-rgb16.png")
    loaded = clearfill.io.load_image(case.image)
    assert loaded.mode == "RGB;16" and np.array_equal(loaded.storage, case.expected_upright)


def test_struct_of_raw_exif_helper_matches_pillow():  # the corpus's hand-made EXIF is what Pillow reads
    from corpus.build import raw_exif

    exif = Image.Exif()
    exif.load(raw_exif([(0x0112, 3, 1, struct.pack("<HH", 6, 0))]))
    assert exif[0x0112] == 6
