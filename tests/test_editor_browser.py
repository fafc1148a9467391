"""The web editor in headless Chromium: open the seed example, paint over the
bottle, press Remove, and check the result; undo/redo and the comparison slider."""

import base64
import io as stdio
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")

from conftest import requires_shared  # noqa: E402
from helpers import EXAMPLE, REPO, SEED  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def server_url():
    import uvicorn

    from clearfill.server import ServerSettings, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(preset="offline")), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server_url)
    return page


def decode(data_url: str) -> Image.Image:
    return Image.open(stdio.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def image_point(page, x, y):
    """Screen coordinates of image pixel (x, y) on the mask canvas."""
    box = page.locator("#mask").bounding_box()
    width = page.evaluate("document.getElementById('mask').width")
    scale = box["width"] / width
    return box["x"] + x * scale, box["y"] + y * scale


def paint(page, points):
    page.mouse.move(*image_point(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*image_point(page, *point), steps=8)
    page.mouse.up()


@requires_shared(SEED)
def test_paint_remove_compare_undo_redo(page):
    page.set_input_files("#open", str(SEED / "original.png"))
    page.wait_for_function("document.getElementById('mask').width === 736")
    # The bottle stands at about x 100-150, y 220-480 in the seed example: two 40-px strokes cover it.
    paint(page, [(112, 225), (112, 480)])
    paint(page, [(140, 225), (140, 480)])
    assert page.evaluate("!window.clearfill.maskIsEmpty()")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert page.evaluate("window.clearfill.maskIsEmpty()")
    page.keyboard.press("Control+Shift+z")
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("!window.clearfill.maskIsEmpty()")

    page.click("#remove")
    page.wait_for_selector("#download:not(.hidden)", timeout=120_000)
    download = decode(page.get_attribute("#download", "href"))
    assert download.format == "JPEG" and download.size == (736, 736)  # the input's format and size
    result = np.asarray(decode(page.get_attribute("#result", "src")).convert("RGB"))  # lossless, as shown
    original = np.asarray(Image.open(SEED / "original.png").convert("RGB"))
    assert result.shape == original.shape

    y, x = np.mgrid[0:736, 0:736]
    near_stroke = (x >= 112 - 25) & (x <= 140 + 25) & (y >= 225 - 25) & (y <= 480 + 25)  # brush 40, grow 3
    painted = (x >= 100) & (x <= 150) & (y >= 235) & (y <= 470)
    assert np.array_equal(result[~near_stroke], original[~near_stroke])
    assert np.any(result != original, axis=2)[painted].mean() > 0.3  # the bottle's pixels were replaced

    page.fill("#compare", "80")
    page.dispatch_event("#compare", "input")
    assert "80%" in page.get_attribute("#result", "style")
    assert page.locator("#strip img").count() >= 4  # mask, removed, crop, ..., stitched
    page.fill("#compare", "0")  # the whole view shows the result for the screenshot
    page.dispatch_event("#compare", "input")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor.png"))
    assert (ARTIFACTS / "editor.png").stat().st_size > 10_000


def test_two_finger_pinch_zooms_and_pans_without_painting(browser, server_url):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, has_touch=True)
    page = context.new_page()
    page.goto(server_url)
    page.set_input_files("#open", str(EXAMPLE / "coffee.png"))
    page.wait_for_function("document.getElementById('mask').width === 600")
    before = page.evaluate("({...window.clearfill.state})")
    box = page.locator("#mask").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = context.new_cdp_session(page)

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": finger} for finger, (x, y) in enumerate(points)]})

    touch("touchStart", [(cx - 40, cy)])  # the first finger alone would paint...
    touch("touchStart", [(cx - 40, cy), (cx + 40, cy)])  # ...until the second one lands
    for step in range(1, 7):  # fingers spread from 80 to 200 px apart while moving 60 px down
        touch("touchMove", [(cx - 40 - 10 * step, cy + 10 * step), (cx + 40 + 10 * step, cy + 10 * step)])
    touch("touchEnd", [])
    after = page.evaluate("({...window.clearfill.state})")
    assert after["zoom"] == pytest.approx(before["zoom"] * 2.5, rel=0.02)
    # the image point that was between the fingers is still between them, 60 px lower
    view = page.locator("#viewport").bounding_box()
    start_x, start_y = cx - view["x"], cy - view["y"]
    image_x = (start_x - before["panX"]) / before["zoom"]
    image_y = (start_y - before["panY"]) / before["zoom"]
    assert after["panX"] == pytest.approx(start_x - image_x * after["zoom"], abs=2)
    assert after["panY"] == pytest.approx(start_y + 60 - image_y * after["zoom"], abs=2)
    assert page.evaluate("window.clearfill.maskIsEmpty()")  # the pinch left no paint behind
    context.close()
