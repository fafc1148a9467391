"""A corpus of unusual and broken input files, made at test time (no binary blobs in
the repo), each with what clearfill must do with it.

    python tests/corpus/build.py OUTDIR    # writes the files and prints the cases

Every case is an image, a mask, an output name, extra CLI arguments, and the
expected outcome: ``ok`` with what the output must keep (mode, ICC, EXIF, alpha,
untouched pixels outside the hole), or ``error`` with a fragment of the one-line
message.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

H, W = 32, 40
MASK_CENTRE, MASK_RADIUS = (20, 16), 5
MAKE = "ClearfillTestCam"


@dataclass
class Case:
    name: str
    image: Path
    mask: Path
    output: str  # file name of the output, in the case's output folder
    ok: bool
    fragment: str = ""  # error cases: part of the message
    mode: str | None = None  # ok cases: the output's storage mode (clearfill's names)
    reader: str = "pillow"  # how the test reads the output independently: pillow or cv2 (16-bit colour)
    lossless: bool = True  # pixels outside the hole identical to the input's
    icc: bytes | None = None
    exif_make: bool = False
    alpha: bool = False  # the alpha channel identical everywhere
    expected_upright: np.ndarray | None = None  # the input as it should be read (orientation applied)
    warning: str = ""  # ok cases that must warn: part of the one-line warning
    args: list[str] = field(default_factory=list)
    output_is: str = ""  # "image", "mask", "folder", "under-file": where -o points instead of a new file


def _rng():
    return np.random.default_rng(7)


def picture(height: int = H, width: int = W) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 7.0), 0.5 + 0.4 * np.cos(y / 5.0), 0.5 + 0.3 * np.sin((x + y) / 9.0)], 2)
    return (np.clip(base + _rng().normal(0, 0.03, base.shape), 0, 1) * 255).astype(np.uint8)


def disk(height: int = H, width: int = W, centre=MASK_CENTRE, radius=MASK_RADIUS) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (((x - centre[0]) ** 2 + (y - centre[1]) ** 2) <= radius ** 2).astype(np.uint8) * 255


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_with_make() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif[0x8769] = {0x829A: (1, 125)}
    return exif.tobytes()


def raw_exif(entries: list[tuple[int, int, int, bytes]], offset: int = 8) -> bytes:
    """Hand-made little-endian EXIF: (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", t, k, c) + v for t, k, c, v in entries)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", offset) + ifd + b"\x00\x00\x00\x00"


def png_chunks(width: int, height: int, depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw_rows))
            + _chunk(b"IEND", b""))


def png16(values: np.ndarray, colour_type: int) -> bytes:
    height, width = values.shape[:2]
    rows = values.astype(">u2").reshape(height, -1)
    return png_chunks(width, height, 16, colour_type, b"".join(b"\x00" + row.tobytes() for row in rows))


def tiff(values: np.ndarray, **options) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values, **options)
    return buffer.getvalue()


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def build(folder: Path) -> list[Case]:
    """Write the corpus into ``folder`` and return its cases."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = picture()
    rgb_image = Image.fromarray(rgb)
    gray = np.asarray(rgb_image.convert("L"))
    alpha = np.tile(np.linspace(40, 255, W).astype(np.uint8), (H, 1))
    deep = (rgb.astype(np.uint16) * 257 + _rng().integers(0, 200, rgb.shape)).astype(np.uint16)
    icc = srgb_profile()
    mask = save(Image.fromarray(disk()), folder / "mask.png")
    cases: list[Case] = []

    def ok(name, make, *, mode, output=None, **expect):
        path = folder / name
        make(path)
        cases.append(Case(name, path, expect.pop("mask", mask), output or f"out-{name}", True, mode=mode, **expect))

    def error(name, make, fragment, *, output=None, **extra):
        path = folder / name
        if make is not None:
            make(path)
        cases.append(Case(name, path, extra.pop("mask", mask), output or f"out-{name.rsplit('.', 1)[0]}.png", False,
                          fragment=fragment, **extra))

    # --- ordinary files in every format and mode that should come out as they went in
    ok("rgb.png", lambda p: save(rgb_image, p), mode="RGB")
    ok("rgb.jpg", lambda p: save(rgb_image, p, quality=92), mode="RGB", lossless=False)
    ok("rgb-progressive.jpg", lambda p: save(rgb_image, p, progressive=True), mode="RGB", lossless=False)
    ok("rgb.webp", lambda p: save(rgb_image, p, lossless=True), mode="RGB", lossless=False)  # written lossy (q 95)
    ok("rgb.tif", lambda p: save(rgb_image, p), mode="RGB")
    ok("rgb-deflate.tiff", lambda p: save(rgb_image, p, compression="tiff_adobe_deflate"), mode="RGB")
    ok("rgb.bmp", lambda p: save(rgb_image, p), mode="RGB")
    ok("rgb-interlaced.png", lambda p: p.write_bytes(_interlaced_png(rgb)), mode="RGB")
    ok("rgb.gif", lambda p: save(rgb_image.quantize(200), p), mode="P", output="out-rgb-gif.png")
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    ok("rgba.png", lambda p: save(rgba, p), mode="RGBA", alpha=True)
    ok("rgba.tif", lambda p: save(rgba, p), mode="RGBA", alpha=True)
    ok("rgba.webp", lambda p: save(rgba, p, lossless=True), mode="RGBA", lossless=False)
    ok("gray.png", lambda p: save(Image.fromarray(gray), p), mode="L")
    ok("gray.jpg", lambda p: save(Image.fromarray(gray), p, quality=95), mode="L", lossless=False)
    ok("gray.bmp", lambda p: save(Image.fromarray(gray), p), mode="L")
    ok("gray-alpha.png", lambda p: save(Image.fromarray(np.dstack([gray, alpha]), "LA"), p), mode="LA", alpha=True)
    ok("gray-alpha.tif", lambda p: save(Image.fromarray(np.dstack([gray, alpha]), "LA"), p), mode="LA", alpha=True)
    one_bit = Image.fromarray(gray > 128)
    ok("one-bit.png", lambda p: save(one_bit, p), mode="1")
    ok("one-bit.tif", lambda p: save(one_bit, p), mode="1")
    ok("one-bit.bmp", lambda p: save(one_bit, p), mode="1")
    ok("one-bit-to-jpeg.png", lambda p: save(one_bit, p), mode="L", output="out-one-bit.jpg", lossless=False)
    palette = rgb_image.quantize(48)
    ok("palette.png", lambda p: save(palette, p), mode="P")
    ok("palette.bmp", lambda p: save(palette, p), mode="P")
    ok("palette.tif", lambda p: save(palette, p), mode="P")
    ok("palette-transparent.png", lambda p: save(palette, p, transparency=3), mode="P")
    ok("palette-to-jpeg.png", lambda p: save(palette, p), mode="RGB", output="out-palette.jpg", lossless=False)
    ok("gray16.png", lambda p: save(Image.fromarray(deep[..., 0]), p), mode="I;16")
    ok("gray16.tif", lambda p: save(Image.fromarray(deep[..., 0]), p), mode="I;16")
    ok("rgb16.png", lambda p: p.write_bytes(png16(deep, 2)), mode="RGB;16", reader="cv2")
    ok("rgb16.tif", lambda p: p.write_bytes(tiff(deep, photometric="rgb")), mode="RGB;16", reader="cv2")
    rgba16 = np.dstack([deep, (alpha.astype(np.uint16) * 257)])
    ok("rgba16.png", lambda p: p.write_bytes(png16(rgba16, 6)), mode="RGBA;16", reader="cv2", alpha=True)
    ok("gray-alpha16.png", lambda p: p.write_bytes(png16(rgba16[..., [0, 3]], 4)), mode="LA;16", reader="cv2",
       alpha=True)
    cmyk = np.dstack([255 - rgb, np.full((H, W), 60, np.uint8)])  # a real black plate: K != 0
    ok("cmyk.tif", lambda p: save(Image.fromarray(cmyk, "CMYK"), p), mode="CMYK")
    ok("cmyk.jpg", lambda p: save(Image.fromarray(cmyk, "CMYK"), p, quality=95), mode="CMYK", lossless=False)
    ok("lab.tif", lambda p: save(rgb_image.convert("LAB"), p), mode="LAB")
    ok("float.tif", lambda p: p.write_bytes(tiff(gray.astype(np.float32) / 255)), mode="F")
    ok("float-hdr.tif", lambda p: p.write_bytes(tiff(gray.astype(np.float32) * 40.5 - 1000)), mode="F")
    ok("int32.tif", lambda p: p.write_bytes(tiff(gray.astype(np.int32) * 9000 - 1_000_000)), mode="I")
    ok("uint8-tifffile.tif", lambda p: p.write_bytes(tiff(rgb, photometric="rgb")), mode="RGB")

    # --- metadata
    ok("icc.png", lambda p: save(rgb_image, p, icc_profile=icc), mode="RGB", icc=icc)
    ok("icc-exif.jpg", lambda p: save(rgb_image, p, icc_profile=icc, exif=exif_with_make(), quality=95),
       mode="RGB", icc=icc, exif_make=True, lossless=False)
    ok("icc-exif.webp", lambda p: save(rgb_image, p, icc_profile=icc, exif=exif_with_make(), lossless=True),
       mode="RGB", icc=icc, exif_make=True, lossless=False)
    ok("icc-exif-rgb16.png", lambda p: p.write_bytes(_with_png_metadata(png16(deep, 2), icc, exif_with_make())),
       mode="RGB;16", reader="cv2", icc=icc, exif_make=True)
    ok("icc-exif-rgb16-to-tiff.png",
       lambda p: p.write_bytes(_with_png_metadata(png16(deep, 2), icc, exif_with_make())),
       mode="RGB;16", reader="cv2", icc=icc, exif_make=True, output="out-icc-exif-rgb16.tif")
    ok("icc-exif-gray16.png", lambda p: save(Image.fromarray(deep[..., 0]), p, exif=exif_with_make()),
       mode="I;16", exif_make=True)
    ok("tiff-tags.tif", lambda p: save(rgb_image, p, exif=exif_with_make()), mode="RGB", exif_make=True)
    ok("tiff-tags-to-png.tif", lambda p: save(rgb_image, p, exif=exif_with_make()), mode="RGB", exif_make=True,
       output="out-tiff-tags.png")
    ok("float-tags.tif", lambda p: p.write_bytes(tiff(gray.astype(np.float32) / 255, software="lab")), mode="F")
    ok("corrupt-exif.jpg",
       lambda p: save(rgb_image, p, quality=95, exif=b"Exif\x00\x00II*\x00" + struct.pack("<I", 5000)),
       mode="RGB", lossless=False, warning="EXIF data is corrupt and was dropped")
    for orientation in (3, 6, 8):
        raw = picture(H, W + 8)
        upright = np.rot90(raw, {3: 2, 6: 3, 8: 1}[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        ok(f"orientation-{orientation}.png", lambda p, raw=raw, exif=exif: save(Image.fromarray(raw), p,
                                                                                   exif=exif.tobytes()),
           mode="RGB", expected_upright=upright, mask=_mask_for(folder, upright.shape, f"o{orientation}"))
    raw16 = (picture(H, W + 8).astype(np.uint16) * 257)
    exif6 = raw_exif([(0x0112, 3, 1, struct.pack("<HH", 6, 0))])
    ok("orientation-6-rgb16.png", lambda p: p.write_bytes(_with_png_metadata(png16(raw16, 2), None, exif6)),
       mode="RGB;16", reader="cv2", expected_upright=np.rot90(raw16, 3),
       mask=_mask_for(folder, np.rot90(raw16, 3).shape, "o6-16"))

    # --- masks of every kind
    ok("mask-alpha.png", lambda p: save(rgb_image, p), mode="RGB",
       mask=save(Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), disk()]), "RGBA"),
                 folder / "mask-alpha-layer.png"))
    ok("mask-16bit.png", lambda p: save(rgb_image, p), mode="RGB",
       mask=save(Image.fromarray(disk().astype(np.uint16) * 257), folder / "mask16.png"))
    ok("mask-1bit.png", lambda p: save(rgb_image, p), mode="RGB",
       mask=save(Image.fromarray(disk() > 0), folder / "mask1.png"))
    ok("mask-float.png", lambda p: save(rgb_image, p), mode="RGB",
       mask=_write(folder / "mask-float.tif", tiff(disk().astype(np.float32) / 255)))
    ok("mask-palette.png", lambda p: save(rgb_image, p), mode="RGB",
       mask=save(Image.fromarray(disk()).convert("P"), folder / "mask-p.png"))
    ok("mask-resized.png", lambda p: save(rgb_image, p), mode="RGB", args=["--resize-mask"],
       mask=save(Image.fromarray(disk(H * 2, W * 2, (40, 32), 10)), folder / "mask-big.png"))
    ok("tiny-8x8.png", lambda p: save(Image.fromarray(picture(8, 8)), p), mode="RGB",
       mask=save(Image.fromarray(disk(8, 8, (4, 4), 0)), folder / "mask-8x8.png"))
    ok("strip-1x60.png", lambda p: save(Image.fromarray(picture(1, 60)), p), mode="RGB",
       mask=save(Image.fromarray(disk(1, 60, (30, 0), 2)), folder / "mask-strip.png"))

    # --- broken or hostile files: exit 2, one line, nothing written
    error("empty.png", lambda p: p.write_bytes(b""), "not an image")
    error("text.jpg", lambda p: p.write_text("hello, I am not a photo\n"), "not an image")
    error("html.png", lambda p: p.write_text("<!doctype html><title>404</title>"), "not an image")
    error("random.tif", lambda p: p.write_bytes(_rng().bytes(3000)), "not an image")
    error("truncated.png", lambda p: p.write_bytes(_bytes_of(rgb_image, "PNG")[:300]), "truncated or corrupt")
    error("truncated.jpg", lambda p: p.write_bytes(_bytes_of(rgb_image, "JPEG")[:400]), "Truncated")
    error("bad-crc.png", lambda p: p.write_bytes(_flip_byte(_bytes_of(rgb_image, "PNG"), 30)), "not an image")
    error("zero-width.png", lambda p: p.write_bytes(png_chunks(0, 10, 8, 2, b"")), "image")
    error("bomb-30000.png", lambda p: p.write_bytes(png_chunks(30000, 30000, 8, 2, b"\x00")), "over the limit")
    error("bomb-jpeg-65000.jpg", lambda p: p.write_bytes(_jpeg_with_size(rgb_image, 65000, 65000)),
          "over the limit")
    error("ztxt-bomb.png", lambda p: p.write_bytes(_ztxt_bomb(rgb_image)), "cannot read")
    error("orientation-text.jpg", lambda p: save(rgb_image, p, exif=raw_exif([(0x0112, 2, 4, b"six\x00")])),
          "invalid EXIF orientation")
    orientation_99 = raw_exif([(0x0112, 3, 1, struct.pack("<HH", 99, 0))])
    error("orientation-99.jpg", lambda p: save(rgb_image, p, exif=orientation_99), "invalid EXIF orientation")
    nan = gray.astype(np.float32) / 255
    nan[3, 4] = np.nan
    error("float-nan.tif", lambda p: p.write_bytes(tiff(nan)), "NaN or infinite")
    inf = gray.astype(np.float32)
    inf[0, 0] = np.inf
    error("float-inf.tif", lambda p: p.write_bytes(tiff(inf)), "NaN or infinite")
    nan_mask = disk().astype(np.float32) / 255
    nan_mask[0, 0] = np.nan
    error("mask-nan.png", lambda p: save(rgb_image, p), "NaN or infinite",
          mask=_write(folder / "mask-nan.tif", tiff(nan_mask)))
    error("mask-wrong-size.png", lambda p: save(rgb_image, p), "but the image is 40x32; pass --resize-mask",
          mask=save(Image.fromarray(disk(H + 1, W)), folder / "mask-33.png"))
    error("mask-empty.png", lambda p: save(rgb_image, p), "marks nothing",
          mask=save(Image.new("L", (W, H), 0), folder / "m-empty.png"))
    error("mask-full.png", lambda p: save(rgb_image, p), "covers the whole image",
          mask=save(Image.new("L", (W, H), 255), folder / "m-full.png"))
    error("mask-missing.png", lambda p: save(rgb_image, p), "mask not found", mask=folder / "no-such-mask.png")
    error("mask-folder.png", lambda p: save(rgb_image, p), "is a folder", mask=folder)
    error("mask-text.png", lambda p: save(rgb_image, p), "not an image",
          mask=_write(folder / "m-text.png", b"not a mask"))
    error("image-missing.png", None, "image not found")
    error("float-to-png.tif", lambda p: p.write_bytes(tiff(gray.astype(np.float32) / 255)),
          "can only be written as TIFF")
    error("int32-to-jpeg.tif", lambda p: p.write_bytes(tiff(gray.astype(np.int32))), "can only be written as TIFF",
          output="out-int32.jpg")
    error("alpha-to-jpeg.png", lambda p: save(rgba, p), "alpha channel", output="out-alpha.jpg")
    error("bad-extension.png", lambda p: save(rgb_image, p), "cannot tell the output format", output="out.xyz")
    error("output-is-image.png", lambda p: save(rgb_image, p), "never replaces its input", output_is="image")
    error("output-is-mask.png", lambda p: save(rgb_image, p), "never replaces its input", output_is="mask")
    error("output-is-folder.png", lambda p: save(rgb_image, p), "it is a folder", output_is="folder")
    error("output-under-file.png", lambda p: save(rgb_image, p), "is a file, not a folder", output_is="under-file")
    error("stages-is-a-file.png", lambda p: save(rgb_image, p), "cannot write the folder",
          args=["--save-stages", str(_write(folder / "stages.txt", b"a file"))])
    error("bad-quality.png", lambda p: save(rgb_image, p), "--quality must be 1..100", args=["--quality", "0"])
    error("bad-set.png", lambda p: save(rgb_image, p), "unknown parameter", args=["--set", "crop.width=3"])
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mask_for(folder: Path, shape, name: str) -> Path:
    height, width = shape[:2]
    return save(Image.fromarray(disk(height, width, (width // 2, height // 2), 5)), folder / f"mask-{name}.png")


def _bytes_of(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1:]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _interlaced_png(rgb: np.ndarray) -> bytes:
    """An Adam7-interlaced PNG, made by hand (Pillow does not write them)."""
    height, width = rgb.shape[:2]
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in passes for row in rgb[y0::dy, x0::dx]
                   if row.size)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _with_png_metadata(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """``png`` with iCCP and eXIf chunks inserted after its header."""
    extra = b""
    if icc:
        extra += _chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    end_of_header = 8 + 25
    return png[:end_of_header] + extra + png[end_of_header:]


def _jpeg_with_size(image: Image.Image, width: int, height: int) -> bytes:
    data = bytearray(_bytes_of(image, "JPEG"))
    marker = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, marker + 5, height, width)
    return bytes(data)


def _ztxt_bomb(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * (64 * 1024 * 1024), zip=True)  # 64 MB that compress to ~64 kB
    return _bytes_of(image, "PNG", pnginfo=info)


if __name__ == "__main__":
    for case in build(Path(sys.argv[1])):
        outcome = f"ok ({case.mode})" if case.ok else f"error ({case.fragment})"
        print(f"{case.name:<32} {outcome}")
