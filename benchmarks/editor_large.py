"""A 24 MP removal through the editor against the same job through the library.

The editor path is what a user waits for: Chromium (Debian's, headless) opens the
photo and its mask file, presses Remove, and the clock stops when the result is on
the canvas (the server's job, events, result download and decoding included). The
library path is ``clearfill.remove`` on the same files with the same preset. Both
run on this one machine: the library N times in this process, then the editor N
times against one server (the photo opened anew each time). The first removal in a
process is slower than the next on either path; each is printed, and the ratio is
the editor's median over the library's.

    .venv/bin/python benchmarks/editor_large.py [--side 6000] [--preset offline]

The last line is the ratio, editor time over library time, as ``N.NNx``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

import clearfill

REPO = Path(__file__).resolve().parents[1]
COFFEE = REPO / "examples" / "coffee"


def large_case(folder: Path, long_side: int) -> tuple[Path, Path]:
    """The bundled photo scaled to ``long_side`` (3:2, like a 24 MP camera) and its spoon mask."""
    photo = Image.open(COFFEE / "coffee.png").convert("RGB")
    size = (long_side, long_side * 2 // 3)
    image, mask = folder / "large.jpg", folder / "large-mask.png"
    photo.resize(size, Image.Resampling.LANCZOS).save(image, quality=92)
    Image.open(COFFEE / "spoon-mask.png").convert("L").resize(size, Image.Resampling.NEAREST).save(mask)
    return image, mask


def serve(preset: str) -> tuple[str, object]:
    import uvicorn

    from clearfill.server import ServerSettings, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ServerSettings(preset=preset, max_pixels=40_000_000, max_upload_mb=100)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


class Editor:
    """Debian's Chromium (headless) on the editor, one page for every removal."""

    def __init__(self, playwright, url: str):
        self.browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        self.page = self.browser.new_page(viewport={"width": 1440, "height": 900})
        self.asked, self.start, self.removals = [], 0.0, 0
        self.page.on("request", lambda request: self.asked.append(
            (time.perf_counter() - self.start, request.url.split("?")[0].split("/v1/")[-1])))
        self.page.on("dialog", lambda dialog: dialog.accept())  # "drop the results not downloaded?": yes
        self.page.goto(url)

    def remove(self, image: Path, mask: Path) -> float:
        """Seconds from pressing Remove to the result on the canvas, the photo and its mask
        file opened anew first; ``asked`` then holds when (seconds after Remove) each API
        path was asked for."""
        page = self.page
        page.set_input_files("#open", str(image))
        page.wait_for_function(f"window.clearfill.state.generation > {self.removals}", timeout=120_000)
        page.set_input_files("#mask-file", str(mask))
        page.wait_for_function("window.clearfill.state.hasMask", timeout=120_000)
        self.asked.clear()
        self.start = time.perf_counter()
        page.click("#remove")
        page.wait_for_function("window.clearfill.state.versions.length > 1 && !window.clearfill.state.job",
                               timeout=900_000)
        self.removals += 1
        return time.perf_counter() - self.start

    def close(self) -> None:
        self.browser.close()


def through_the_library(image: Path, mask: Path, preset: str) -> float:
    start = time.perf_counter()
    result = clearfill.remove(image, mask, preset, max_pixels=40_000_000)
    result.save(Path(tempfile.gettempdir()) / "editor-large-library.jpg")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=6000, help="long side of the photo (6000: 24 MP)")
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--removals", type=int, default=4,
                        help="removals each way, the first a warm-up (default: %(default)s)")
    args = parser.parse_args()
    if args.removals < 2:
        parser.error("--removals: at least 2 (the first is a warm-up)")
    with tempfile.TemporaryDirectory() as folder:
        image, mask = large_case(Path(folder), args.side)
        width, height = Image.open(image).size
        print(f"photo {width}x{height} ({width * height / 1e6:.1f} MP), preset {args.preset}, "
              f"mask {np.asarray(Image.open(mask)).astype(bool).mean():.2%} of it")
        from playwright.sync_api import sync_playwright

        url, server = serve(args.preset)
        library, editor = [], []
        try:
            with sync_playwright() as playwright:
                chromium = Editor(playwright, url)
                for _ in range(args.removals):  # taken in turns, so the machine's drift falls on both
                    library.append(through_the_library(image, mask, args.preset))
                    editor.append(chromium.remove(image, mask))
                chromium.close()
        finally:
            server.should_exit = True
    print(f"library: {', '.join(f'{s:.1f}' for s in library)} s (one process)")
    print(f"editor:  {', '.join(f'{s:.1f}' for s in editor)} s from Remove to the result on the canvas "
          "(one server, a fresh worker)")
    print("after the last Remove: " + ", ".join(
        f"{path.split('/')[-1] if '/' in path else 'POST jobs'} at {at:.1f} s" for at, path in chromium.asked
        if path.startswith("jobs")))
    print("editor / library, removal by removal: " + ", ".join(
        f"{e / b:.2f}x" for e, b in zip(editor, library, strict=True)))
    # A process's first large removal is slower than the next (its allocator has not yet
    # grown to the photo's size; the server's worker lives on): the first of each is a
    # warm-up, printed above and left out of the ratio.
    print(f"{statistics.median(editor[1:]) / statistics.median(library[1:]):.2f}x")


if __name__ == "__main__":
    main()
