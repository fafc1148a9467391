"""Image and mask I/O: formats, orientation, metadata, alpha, depth, atomic writes."""

import io as stdio
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import disk_mask, photo_like
from PIL import Image, ImageCms, ImageOps

import clearfill
from clearfill import io
from clearfill.errors import ImageTooLargeError, InvalidInputError
from clearfill.io import metadata

H, W = 48, 64


@pytest.fixture
def picture(rng):
    return photo_like(rng, H, W)


@pytest.fixture
def mask_path(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(disk_mask(H, W, 30, 24, 8)).save(path)
    return path


def _remove_and_reload(image_path, mask_path, out_path):
    result = clearfill.remove(image_path, mask_path, "fast")
    result.save(out_path)
    return result, Image.open(out_path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_every_input_format_reads_and_writes(tmp_path, picture, mask_path, ext):
    src = tmp_path / f"in{ext}"
    Image.fromarray(picture).save(src)
    result, out = _remove_and_reload(src, mask_path, tmp_path / f"out{ext}")
    assert out.size == (W, H) and out.format == io.FORMATS[ext]
    assert result.changed.any()
    if ext in (".png", ".tif", ".bmp"):  # lossless: unchanged pixels are bit-identical
        keep = ~result.changed
        assert np.array_equal(np.asarray(out)[keep], np.asarray(Image.open(src))[keep])
        assert not result.changed[~result.hole].any()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_for_8_and_16_bit(orientation, picture):
    # 16-bit colour is decoded by OpenCV, which ignores EXIF: our own rotation must match Pillow's.
    image = Image.fromarray(picture)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(metadata.orient(picture, orientation), expected)


def test_exif_orientation_from_a_jpeg_file(tmp_path, picture):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(picture).save(path, exif=exif.tobytes(), quality=100)
    loaded = io.load_image(path)
    assert loaded.size == (H, W)
    assert loaded.exif is None or 0x0112 not in _exif(loaded.exif)  # upright pixels: the tag is dropped


def _exif(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_icc_profile_and_exif_are_kept(tmp_path, picture, mask_path, ext):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "clearfill tester"  # Artist
    src = tmp_path / f"in{ext}"
    Image.fromarray(picture).save(src, icc_profile=icc, exif=exif.tobytes())
    _, out = _remove_and_reload(src, mask_path, tmp_path / f"out{ext}")
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x013B) == "clearfill tester"


def test_an_icc_profile_is_dropped_when_the_colour_space_changes(tmp_path, picture, mask_path):
    """A CMYK profile describes CMYK numbers: written as PNG (RGB) it would be applied to
    RGB ones and shift every colour. Kept where the output stays CMYK."""
    profile = b"stand-in for a CMYK profile"  # kept or dropped as bytes: its contents do not matter
    src = tmp_path / "in.jpg"
    Image.fromarray(picture).convert("CMYK").save(src, icc_profile=profile, quality=95)
    _, as_png = _remove_and_reload(src, mask_path, tmp_path / "out.png")
    _, as_jpeg = _remove_and_reload(src, mask_path, tmp_path / "out.jpg")
    assert as_png.mode == "RGB" and as_png.info.get("icc_profile") is None
    assert as_jpeg.mode == "CMYK" and as_jpeg.info.get("icc_profile") == profile


def test_rgba_alpha_is_untouched(tmp_path, picture, mask_path, rng):
    alpha = rng.integers(0, 256, (H, W), dtype=np.uint8)
    src = tmp_path / "in.png"
    Image.fromarray(np.dstack([picture, alpha]), "RGBA").save(src)
    result, out = _remove_and_reload(src, mask_path, tmp_path / "out.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)
    assert result.image.mode == "RGBA"
    with pytest.raises(InvalidInputError, match="alpha channel that JPEG cannot store"):
        result.save(tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_grayscale_stays_grayscale_and_unchanged_outside(tmp_path, picture, mask_path):
    gray = picture[..., 1]
    src = tmp_path / "in.png"
    Image.fromarray(gray, "L").save(src)
    result, out = _remove_and_reload(src, mask_path, tmp_path / "out.png")
    assert out.mode == "L"
    assert np.array_equal(np.asarray(out)[~result.hole], gray[~result.hole])
    assert not np.array_equal(np.asarray(out)[result.hole], gray[result.hole])


def test_palette_image_stays_a_palette_image(tmp_path, picture, mask_path):
    src = tmp_path / "in.png"
    palette_image = Image.fromarray(picture).quantize(64)
    palette_image.save(src)
    result, out = _remove_and_reload(src, mask_path, tmp_path / "out.png")
    assert out.mode == "P" and out.getpalette() == palette_image.getpalette()
    assert np.array_equal(np.asarray(out)[~result.hole], np.asarray(palette_image)[~result.hole])  # same indices
    assert not np.array_equal(np.asarray(out)[result.hole], np.asarray(palette_image)[result.hole])
    # the fill uses the palette's nearest colours: its RGB is close to what the pipeline made
    filled = np.asarray(out.convert("RGB"))[result.hole].astype(int)
    assert np.abs(filled - np.rint(result.pixels[result.hole] * 255)).mean() < 12
    jpeg = Image.open(result.save(tmp_path / "out.jpg"))  # JPEG holds no palette: RGB
    assert jpeg.mode == "RGB"


def test_16_bit_gray_keeps_its_depth(tmp_path, mask_path, rng):
    gray16 = (rng.random((H, W)) * 65535).astype(np.uint16)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gray16)
    result, out = _remove_and_reload(src, mask_path, tmp_path / "out.png")
    values = np.asarray(out)
    assert out.mode.startswith("I") and values.dtype.itemsize >= 2
    assert np.array_equal(values[~result.hole], gray16[~result.hole])


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_colour_keeps_its_depth(tmp_path, mask_path, rng, ext):
    rgb16 = (rng.random((H, W, 3)) * 65535).astype(np.uint16)
    src = tmp_path / f"in{ext}"
    cv2.imwrite(str(src), rgb16[..., ::-1])
    loaded = io.load_image(src)
    assert loaded.mode == "RGB;16" and np.array_equal(loaded.storage, rgb16)
    result = clearfill.remove(loaded, mask_path, "fast")
    out_path = tmp_path / f"out{ext}"
    result.save(out_path)
    written = cv2.imread(str(out_path), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert written.dtype == np.uint16
    assert np.array_equal(written[~result.hole], rgb16[~result.hole])
    assert not np.array_equal(written[result.hole], rgb16[result.hole])
    result.save(tmp_path / "out8.jpg")  # a format without 16-bit: converted, not refused
    assert Image.open(tmp_path / "out8.jpg").mode == "RGB"


def test_cmyk_jpeg_stays_cmyk_in_jpeg_and_becomes_rgb_in_png(tmp_path, picture, mask_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(picture).convert("CMYK").save(src, quality=100)
    result = clearfill.remove(src, mask_path, "fast")
    result.save(tmp_path / "out.jpg")
    result.save(tmp_path / "out.png")
    assert Image.open(tmp_path / "out.jpg").mode == "CMYK"
    png = Image.open(tmp_path / "out.png")
    assert png.mode == "RGB"
    expected = np.asarray(Image.open(src).convert("RGB"))
    assert np.array_equal(np.asarray(png)[~result.hole], expected[~result.hole])


def test_masks_from_gray_one_bit_colour_and_alpha(tmp_path):
    disk = disk_mask(H, W, 30, 24, 8) > 0
    sources = {
        "gray.png": Image.fromarray(disk.astype(np.uint8) * 255, "L"),
        "bits.png": Image.fromarray(disk).convert("1"),
        "red.png": Image.fromarray(np.dstack([disk * 255, np.zeros((H, W, 2))]).astype(np.uint8)),
        "alpha.png": Image.fromarray(np.dstack([np.full((H, W, 3), 255), disk * 255]).astype(np.uint8), "RGBA"),
    }
    for name, image in sources.items():
        image.save(tmp_path / name)
        values = io.load_mask(tmp_path / name, (W, H))
        assert values.dtype == np.float32 and values.shape == (H, W)
        assert np.array_equal(values >= 0.5, disk), name


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("depth", [8, 16])
def test_a_soft_colour_mask_is_its_brightest_channel(tmp_path, rng, channels, depth):
    """Each pixel's brightest colour channel, exactly, at either depth (the channels are
    compared as integers, so no rounding differs from the float maximum)."""
    top = 2**depth - 1
    colour = (rng.random((H, W, channels)) * top).astype(np.uint8 if depth == 8 else np.uint16)
    if channels == 4:
        colour[..., 3] = top  # opaque: the colour is the mask, not the alpha
    path = tmp_path / "soft.png"
    cv2.imwrite(str(path), colour[..., [2, 1, 0, 3][:channels]])
    values = io.load_mask(path, (W, H))
    expected = colour[..., :3].astype(np.float64).max(axis=2) / top
    assert values.dtype == np.float32 and np.allclose(values, expected, atol=1e-6)


def test_mask_size_mismatch_is_an_error_unless_resize_is_asked(tmp_path):
    Image.fromarray(disk_mask(H // 2, W // 2, 15, 12, 4)).save(tmp_path / "small.png")
    with pytest.raises(InvalidInputError, match=r"^the mask is 32x24 but the image is 64x48$") as error:
        io.load_mask(tmp_path / "small.png", (W, H))
    assert error.value.setting == "resize_mask"  # the CLI and server name their own option
    resized = io.load_mask(tmp_path / "small.png", (W, H), resize_mask=True)
    assert resized.shape == (H, W) and resized[24, 30] == 1.0 and resized[0, 0] == 0.0


def test_unreadable_inputs_raise_one_line_errors(tmp_path, picture):
    with pytest.raises(InvalidInputError, match="image not found"):
        io.load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image at all")
    with pytest.raises(InvalidInputError, match="not an image"):
        io.load_image(tmp_path / "notes.png")
    buffer = stdio.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        io.load_image(tmp_path / "cut.png")


def test_pixel_limit_refuses_before_decoding(tmp_path, picture):
    buffer = stdio.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    path = tmp_path / "bomb-header-only.png"
    path.write_bytes(buffer.getvalue()[:100])  # a valid header and no pixel data
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        io.load_image(path, max_pixels=H * W - 1)


def test_output_format_comes_from_the_extension():
    assert io.output_format("a/b.JPEG") == "JPEG" and io.output_format("x.tiff") == "TIFF"
    with pytest.raises(InvalidInputError, match="cannot tell the output format"):
        io.output_format("out.gif2")


def test_atomic_writer_leaves_the_old_file_and_no_temp_on_failure(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with io.atomic_writer(target) as handle:
            handle.write(b"half a fi")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_written_files_get_ordinary_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        with io.atomic_writer(tmp_path / "out.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_jpeg_is_written_at_high_quality_without_chroma_subsampling(tmp_path, picture, mask_path):
    from PIL import JpegImagePlugin

    src = tmp_path / "in.png"
    Image.fromarray(picture).save(src)
    clearfill.remove(src, mask_path, "fast").save(tmp_path / "out.jpg")
    written = Image.open(tmp_path / "out.jpg")
    luma_table = written.quantization[0]
    assert max(luma_table) <= 12  # IJG quality 95 scales the standard table (max 121) to 12; q90 gives 24
    assert JpegImagePlugin.get_sampling(written) == 0  # 4:4:4


# ----------------------------------------------------------------------------- the library's own inputs


_NOISE = np.random.default_rng(11).random((H, W, 4))


@pytest.mark.parametrize("array, mode", [
    ((_NOISE[..., 0] * 255).astype(np.uint8), "L"),
    ((_NOISE[..., :3] * 65535).astype(np.uint16), "RGB;16"),
    ((_NOISE * 65535).astype(np.uint16), "RGBA;16"),
    ((_NOISE[..., :2] * 255).astype(np.uint8), "LA"),
    (_NOISE[..., 0].astype(np.float32), "F"),
    (_NOISE[..., :3], "RGB;16"),
    (_NOISE[..., 0] > 0.5, "1"),
])
def test_arrays_of_every_usual_kind_are_images(array, mode, tmp_path):
    loaded = io.load_image(array)
    assert loaded.mode == mode and loaded.size == (W, H)
    mask = disk_mask(H, W, 30, 24, 8)
    result = clearfill.remove(array, mask, "fast")
    assert result.changed.any() and not result.changed[~result.hole].any()


@pytest.mark.parametrize("image, mask, fragment", [
    (np.zeros((H, W), np.int64), None, "dtype int64"),
    (np.zeros((H, W, 5), np.uint8), None, "C = 1 to 4"),
    (np.zeros(W, np.uint8), None, "H x W"),
    (np.full((H, W, 3), 1.5, np.float32), None, "must lie in [0, 1]"),
    (np.full((H, W, 3), np.nan, np.float32), None, "NaN or infinite"),
    (None, np.zeros(W, np.uint8), "mask array must be H x W"),
    (None, np.zeros((1, H, W, 1), np.uint8), "mask array must be H x W"),
    (None, np.zeros((H, W), np.complex64), "dtype complex64"),
    ("not-a-thing", None, "not found"),
    (12345, None, "image must be a path, an open file, a PIL image or an array"),
])
def test_unusable_arrays_and_objects_are_typed_one_line_errors(picture, image, mask, fragment):
    image = picture if image is None else image
    mask = disk_mask(H, W, 30, 24, 8) if mask is None else mask
    with pytest.raises(InvalidInputError) as error:
        clearfill.remove(image, mask, "fast")
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_max_pixels_none_lifts_the_limit_and_a_bomb_in_memory_is_refused(picture):
    assert clearfill.remove(picture, disk_mask(H, W, 30, 24, 8), "fast", max_pixels=None).changed.any()
    header = stdio.BytesIO()
    Image.new("L", (1, 1)).save(header, format="PNG")
    data = bytearray(header.getvalue())
    data[16:24] = (40000).to_bytes(4, "big") * 2  # IHDR says 40000 x 40000
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        io.load_image(stdio.BytesIO(bytes(data)))


def test_a_16_bit_png_can_be_passed_as_an_open_file(tmp_path, rng):
    rgb16 = rng.integers(0, 65535, (H, W, 3), dtype=np.uint16)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])
    with open(path, "rb") as handle:
        loaded = io.load_image(handle)
    assert loaded.mode == "RGB;16" and np.array_equal(loaded.storage, rgb16)


def test_library_messages_name_no_command_line_flags(tmp_path, picture):
    with pytest.raises(ImageTooLargeError) as error:
        io.load_image(picture, max_pixels=10) if False else io.load_image(Image.fromarray(picture), max_pixels=10)
    assert "--" not in str(error.value) and error.value.setting == "max_pixels"
    from clearfill.models.device import resolve_device

    with pytest.raises(clearfill.InvalidConfigError) as error:
        resolve_device("cuda")
    assert "--" not in str(error.value) and error.value.setting == "device"


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
                    reason="needs root and setpriv to run clearfill as a user who cannot write anything")
def test_a_user_who_cannot_write_the_install_or_home_still_runs_clearfill(picture, request):
    import subprocess
    import sys
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="clearfill-nobody-"))  # pytest's own folders are closed to others
    request.addfinalizer(lambda: __import__("shutil").rmtree(tmp_path, ignore_errors=True))
    tmp_path.chmod(0o777)
    Image.fromarray(picture).save(tmp_path / "in.png")
    Image.fromarray(disk_mask(H, W, 30, 24, 8)).save(tmp_path / "mask.png")
    (tmp_path / "tmp").mkdir(mode=0o777)
    (tmp_path / "tmp").chmod(0o777)
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "TMPDIR": str(tmp_path / "tmp")}
    command = [*user, sys.executable, "-m", "clearfill.cli"]
    assert subprocess.run([*command, "--help"], env=env, capture_output=True, text=True).returncode == 0
    run = subprocess.run([*command, "remove", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                          "-o", str(tmp_path / "out.png"), "--remover", "exemplar", "--preset", "offline"],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and (tmp_path / "out.png").exists()
    warnings = [line for line in run.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "compiled kernels are cached in" in warnings[0], run.stderr
