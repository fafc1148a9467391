"""The web editor in headless Chromium (Debian's), one test per problem a new user hit
(issue 15): stale state across images, edits that build on each other, compare by
holding, explained results, a real-size brush, live progress and cancel, bad files,
layout/themes/shortcuts, accessibility (axe-core), and the phone layout. Screenshots
of desktop and phone go to test-artifacts/."""

import base64
import io as stdio
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")

from helpers import EXAMPLE, REPO  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"
AXE = REPO / "src" / "clearfill" / "server" / "static" / "vendor" / "axe.min.js"
COFFEE = EXAMPLE / "coffee.png"  # 600 x 400: the spoon runs from (415, 75) down to its bowl at (368, 275)
SPOON = [(415, 75), (395, 150), (380, 225), (368, 275)]
CUP_HANDLE = [(210, 245), (240, 290)]


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
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(server_url)
    yield page
    assert page.errors == []  # no uncaught error in any test


@pytest.fixture
def other_photo(tmp_path):
    """A second photo, a different size, so a stale picture or mask would show."""
    path = tmp_path / "other.png"
    Image.open(COFFEE).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((500, 360)).save(path)
    return path


# ----------------------------------------------------------------------------- helpers


def open_image(page, path):
    generation = page.evaluate("window.clearfill.state.generation")
    page.set_input_files("#open", str(path))
    page.wait_for_function(f"window.clearfill.state.generation > {generation}")


def image_point(page, x, y):
    """Screen coordinates of image pixel (x, y)."""
    box = page.locator("#mask").bounding_box()
    scale = box["width"] / page.evaluate("document.getElementById('mask').width")
    return box["x"] + x * scale, box["y"] + y * scale


def paint(page, points):
    page.mouse.move(*image_point(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*image_point(page, *point), steps=8)
    page.mouse.up()


def mode(page):
    return page.evaluate("document.body.dataset.mode")


def remove_and_wait(page):
    versions = page.evaluate("window.clearfill.state.versions.length")
    page.click("#remove")
    page.wait_for_function(f"window.clearfill.state.versions.length > {versions} && !window.clearfill.state.job",
                           timeout=120_000)


def canvas_pixels(page, canvas="picture"):
    data_url = page.evaluate(f"document.getElementById('{canvas}').toDataURL('image/png')")
    return np.asarray(Image.open(stdio.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def bitmap_pixels(page, bitmap):
    """The pixels of an ImageBitmap (a JS expression, ``await`` allowed), as PNG through a data URL."""
    data_url = page.evaluate(f"""(async () => {{
        const bitmap = {bitmap}, canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        canvas.getContext('2d').drawImage(bitmap, 0, 0);
        const blob = await canvas.convertToBlob({{ type: 'image/png' }});
        const reader = new FileReader();
        return new Promise((done) => {{ reader.onload = () => done(reader.result); reader.readAsDataURL(blob) }});
    }})()""")
    return np.asarray(Image.open(stdio.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"), np.int16)


def near(points, shape, reach):
    """bool mask of pixels within ``reach`` of the polyline through ``points``."""
    layer = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(layer).line(points, fill=255, width=2 * reach)
    for x, y in points:
        ImageDraw.Draw(layer).ellipse((x - reach, y - reach, x + reach, y + reach), fill=255)
    return np.asarray(layer) > 0


def brush_pixels(page):
    return page.evaluate("window.clearfill.state.sizePercent") / 100 * 400  # the coffee photo's short side


# ----------------------------------------------------------------------------- 1. no stale state


def test_opening_an_image_resets_everything_and_drops_removals_in_flight(page, other_photo):
    open_image(page, COFFEE)
    assert page.is_disabled("#remove") and page.is_disabled("#download")  # nothing to act on yet
    paint(page, SPOON)
    assert mode(page) == "painting" and page.is_enabled("#remove")
    remove_and_wait(page)
    assert page.is_enabled("#download") and page.locator("#history li").count() == 2
    assert page.is_visible("#stages-button")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    open_image(page, other_photo)  # the result was never downloaded: asked, and the user agrees
    assert len(asked) == 1
    assert page.evaluate("window.clearfill.state.versions.length") == 1
    assert page.is_disabled("#download") and page.is_disabled("#compare") and page.is_disabled("#undo")
    assert page.locator("#history li").count() == 0 and not page.is_visible("#stages-button")
    assert page.evaluate("window.clearfill.maskIsEmpty()")
    fresh = np.asarray(Image.open(other_photo).convert("RGB"))
    assert np.array_equal(canvas_pixels(page), fresh)

    # a removal still running when another image opens is cancelled, and its answer dropped
    open_image(page, COFFEE)
    paint(page, SPOON)
    page.click("#remove")
    assert mode(page) == "working"
    assert page.is_disabled("#brush") and page.is_disabled("#remove") and page.is_disabled("#undo")
    strokes_before = page.evaluate("window.clearfill.currentMask().data.reduce((a, v) => a + v, 0)")
    paint(page, CUP_HANDLE)  # the canvas does not take strokes while working
    assert page.evaluate("window.clearfill.currentMask().data.reduce((a, v) => a + v, 0)") == strokes_before
    open_image(page, other_photo)
    page.wait_for_timeout(3000)  # long enough for the old removal to have come back
    assert page.evaluate("window.clearfill.state.versions.length") == 1 and mode(page) == "image"
    assert np.array_equal(canvas_pixels(page), fresh)


# ----------------------------------------------------------------------------- 2. edits build on each other


def test_each_removal_builds_on_the_last_and_undo_crosses_removals(page):
    open_image(page, COFFEE)
    original = canvas_pixels(page)
    paint(page, SPOON)
    remove_and_wait(page)
    first = canvas_pixels(page)
    assert np.any(first != original, axis=2)[near(SPOON, original.shape, 10)].mean() > 0.5
    assert page.evaluate("window.clearfill.maskIsEmpty()")  # the strokes were used up

    paint(page, CUP_HANDLE)  # painting on the result: the mask layer shows over it
    assert page.evaluate("getComputedStyle(document.getElementById('mask')).opacity") == "0.55"
    assert page.is_visible("#mask")
    remove_and_wait(page)
    second = canvas_pixels(page)
    untouched = ~near(CUP_HANDLE, original.shape, 60)
    assert np.array_equal(second[untouched], first[untouched])  # only the new strokes changed...
    spoon = near(SPOON, original.shape, 6) & untouched
    assert np.array_equal(second[spoon], first[spoon])  # ...and the spoon stays removed
    assert page.locator("#history li").count() == 3

    page.keyboard.press("Control+z")  # no strokes to undo: back to the first result, its strokes shown
    assert page.evaluate("window.clearfill.state.current") == 1
    assert np.array_equal(canvas_pixels(page), first) and not page.evaluate("window.clearfill.maskIsEmpty()")
    page.keyboard.press("Control+z")  # then the handle stroke itself
    assert page.evaluate("window.clearfill.state.current") == 1 and page.evaluate("window.clearfill.maskIsEmpty()")
    page.keyboard.press("Control+z")  # then the first removal: the original, with the spoon strokes
    assert page.evaluate("window.clearfill.state.current") == 0 and np.array_equal(canvas_pixels(page), original)
    assert not page.evaluate("window.clearfill.maskIsEmpty()")
    for _ in range(3):
        page.keyboard.press("Control+Shift+z")
    assert page.evaluate("window.clearfill.state.current") == 2 and np.array_equal(canvas_pixels(page), second)
    page.locator("#history button").nth(1).click()  # the strip jumps back too
    assert np.array_equal(canvas_pixels(page), first)


def test_the_mask_sent_is_a_1_bit_png_of_every_painted_pixel(page):
    """What Remove sends is the painted layer exactly (a pixel the brush's soft edge
    touched at all counts), as a 1-bit PNG, not a canvas's 8-bit RGBA one (a 24 MP mask
    was a second to write and another to read)."""
    open_image(page, COFFEE)
    paint(page, SPOON)
    painted = page.evaluate("""(() => {
        const canvas = document.getElementById('mask');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return Array.from({ length: data.length / 4 }, (_, i) => data[4 * i + 3] > 0 ? 1 : 0);
    })()""")
    data_url = page.evaluate("""(async () => {
        const blob = await window.clearfill.maskBlob(), reader = new FileReader();
        return new Promise((done) => { reader.onload = () => done(reader.result); reader.readAsDataURL(blob) });
    })()""")
    png_bytes = base64.b64decode(data_url.split(",", 1)[1])
    mask = Image.open(stdio.BytesIO(png_bytes))
    assert mask.mode == "1" and mask.size == (600, 400) and len(png_bytes) < 4000
    expected = np.array(painted, bool).reshape(400, 600)
    assert expected.sum() > 500 and np.array_equal(np.asarray(mask), expected)
    remove_and_wait(page)  # and the server takes it
    assert page.evaluate("window.clearfill.state.versions.length") == 2


def test_redo_brings_a_stroke_back_as_it_was(page):
    open_image(page, COFFEE)
    paint(page, SPOON)
    painted = canvas_pixels(page, "mask")
    page.keyboard.press("Control+z")
    assert page.evaluate("window.clearfill.maskIsEmpty()")
    page.keyboard.press("Control+Shift+z")
    assert not page.evaluate("window.clearfill.maskIsEmpty()")
    assert np.array_equal(canvas_pixels(page, "mask"), painted)
    page.keyboard.press("Control+z")
    page.click("#redo")  # the toolbar's button does the same
    assert np.array_equal(canvas_pixels(page, "mask"), painted)


# ----------------------------------------------------------------------------- 3. compare by holding


def test_compare_by_holding_a_button_or_key_and_a_divider_with_labels(page):
    open_image(page, COFFEE)
    assert page.is_disabled("#compare")
    with page.expect_file_chooser() as chooser:
        page.click("#mask-upload")
    chooser.value.set_files(str(EXAMPLE / "spoon-mask.png"))
    page.wait_for_function("!window.clearfill.maskIsEmpty()")
    remove_and_wait(page)
    assert not page.is_visible("#before")
    page.locator("#compare").hover()
    page.mouse.down()
    assert page.is_visible("#before") and page.is_visible("#holding")
    page.mouse.up()
    assert not page.is_visible("#before") and not page.is_visible("#holding")
    page.locator("#mask").hover()
    page.keyboard.down("\\")
    assert page.is_visible("#before")
    page.keyboard.up("\\")
    assert not page.is_visible("#before")

    page.click("#split")
    assert page.is_visible("#divider") and page.is_visible("#before")
    assert page.inner_text("#divider .before-label") == "Before" and page.inner_text("#divider .after-label") == "After"
    handle = page.locator("#divider-handle").bounding_box()
    assert handle["width"] >= 44 and handle["height"] >= 44
    mask_box = page.locator("#mask").bounding_box()
    page.mouse.move(handle["x"] + 22, handle["y"] + 22)
    page.mouse.down()
    page.mouse.move(mask_box["x"] + mask_box["width"] * 0.25, handle["y"] + 22, steps=5)
    page.mouse.up()
    assert 20 <= int(page.get_attribute("#divider-handle", "aria-valuenow")) <= 30
    assert "75%" in page.evaluate("document.getElementById('before').style.clipPath")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor-desktop.png"))


# ----------------------------------------------------------------------------- 4. explained results


def test_a_result_says_what_ran_how_long_and_its_stage_pictures_enlarge(page):
    """The result comes first; the stage pictures are asked for only when someone opens
    "How it was made" (issue 31: a 24 MP result waited 100 s for full-size ones)."""
    requests = []
    page.on("request", lambda request: requests.append(request.url.split("?")[0].rsplit("/", 1)[-1]))
    open_image(page, COFFEE)
    paint(page, SPOON)
    remove_and_wait(page)
    status = page.inner_text("#status")
    assert status.startswith("Done in ") and " s" in status
    # in words a person uses (issue 31: "removed with exemplar (requested); refine skipped: ...")
    assert "Filled from the photo itself." in status and "needs model weights" in status
    assert not any(word in status for word in ("exemplar", "refine", "requested", "skipped", "model is none"))
    assert "result" in requests and "stages" not in requests
    page.click("#stages-button")
    assert page.is_visible("#stages-dialog")
    pictures = page.locator("#stages button")
    pictures.first.wait_for()
    engine = page.inner_text("#stages")  # the engine's own words are kept here
    assert "refine skipped" in engine and "refine.model is none" in engine
    assert requests.count("stages") == 1 and requests.index("result") < requests.index("stages")
    assert pictures.count() >= 4
    pictures.first.click()
    assert page.is_visible("#viewer")
    assert page.evaluate("document.getElementById('viewer-image').naturalWidth") >= 400
    assert page.evaluate("document.getElementById('viewer-image').getBoundingClientRect().width") > 300
    page.keyboard.press("Escape")
    assert not page.is_visible("#viewer")


# ----------------------------------------------------------------------------- 5. the brush


def test_the_brush_cursor_is_real_size_and_limits_are_checked_on_open(page, tmp_path):
    open_image(page, COFFEE)
    page.mouse.move(*image_point(page, 300, 200))
    assert page.is_visible("#cursor")
    zoom = page.evaluate("window.clearfill.state.zoom")
    assert page.locator("#cursor").bounding_box()["width"] == pytest.approx(brush_pixels(page) * zoom, abs=1.5)
    page.fill("#size", "10")
    page.dispatch_event("#size", "input")
    assert page.locator("#cursor").bounding_box()["width"] == pytest.approx(40 * zoom, abs=1.5)
    assert page.inner_text("#size-value") == "10% · 40 px"
    assert "40 image pixels" in page.get_attribute("#size", "aria-valuetext")
    assert float(page.get_attribute("#size", "max")) >= 25  # 25% of a 24 MP photo's short side: 1000 px
    page.click("#zoom-in")
    assert not page.is_visible("#cursor")  # off the image, no circle
    page.mouse.move(*image_point(page, 300, 200))
    assert page.locator("#cursor").bounding_box()["width"] == pytest.approx(40 * zoom * 1.25, abs=1.5)
    # a photo over the server's limit is refused on open, in words, and nothing changes
    page.evaluate("window.clearfill.state.limits.max_pixels = 100000")
    open_image_refused = page.evaluate("window.clearfill.state.generation")
    page.set_input_files("#open", str(COFFEE))
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "0.2 megapixels" in page.inner_text("#status") and "up to 0.1" in page.inner_text("#status")
    assert page.evaluate("window.clearfill.state.generation") == open_image_refused


# ----------------------------------------------------------------------------- 6. live progress and cancel


def test_progress_follows_the_job_and_cancel_stops_it(page):
    open_image(page, COFFEE)
    paint(page, SPOON)
    page.evaluate("""() => { window.seen = []; const text = document.getElementById('progress-text');
        new MutationObserver(() => window.seen.push(text.textContent)).observe(text, {childList: true}); }""")
    remove_and_wait(page)
    seen = page.evaluate("window.seen")
    assert any(text.startswith("Removing") for text in seen) and any("Stitching" in text for text in seen)
    assert all(text.endswith("s)") or text.endswith("…") for text in seen)

    paint(page, CUP_HANDLE)
    page.click("#remove")
    assert page.is_visible("#progress") and page.is_enabled("#cancel")
    page.click("#cancel")
    assert mode(page) == "painting" and not page.is_visible("#progress")
    assert page.inner_text("#status").startswith("Cancelled")
    page.wait_for_timeout(2500)
    assert page.evaluate("window.clearfill.state.versions.length") == 2  # the cancelled job added nothing


# ----------------------------------------------------------------------------- 7. bad files, favicon


def test_a_file_that_is_not_an_image_is_refused_in_words(page, tmp_path):
    missing = []
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    page.reload()
    open_image(page, COFFEE)
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    page.set_input_files("#open", str(text))
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "is not an image" in page.inner_text("#status")
    assert page.evaluate("window.clearfill.state.versions.length") == 1  # the photo is still there
    assert missing == [] and page.evaluate("document.querySelector('link[rel=icon]').href").endswith("icon.svg")


# ----------------------------------------------------------------------------- 8. layout, themes, shortcuts


def test_one_toolbar_row_refit_on_resize_themes_and_shortcuts(browser, server_url):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.goto(server_url)
    tops = page.evaluate("[...document.querySelectorAll('.toolbar button')].map(b => b.getBoundingClientRect().top)")
    assert max(tops) - min(tops) < 4  # one row: nothing wraps...
    assert page.evaluate("(t => t.scrollWidth <= t.clientWidth)(document.querySelector('.toolbar'))")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(243, 244, 246)"  # light theme
    viewport_top = page.locator("#viewport").bounding_box()["y"]
    open_image(page, COFFEE)
    paint(page, SPOON)
    assert page.locator("#viewport").bounding_box()["y"] == viewport_top  # no layout shift
    page.set_viewport_size({"width": 900, "height": 700})
    page.wait_for_timeout(200)
    view, picture = page.locator("#viewport").bounding_box(), page.locator("#mask").bounding_box()
    assert picture["x"] >= view["x"] - 1 and picture["x"] + picture["width"] <= view["x"] + view["width"] + 1
    page.locator("#mask").hover()
    page.keyboard.press("?")
    assert page.is_visible("#help") and "Enter" in page.inner_text("#help")
    page.keyboard.press("Escape")
    page.keyboard.press("+")
    assert not page.evaluate("window.clearfill.state.fitted")
    page.keyboard.press("Escape")  # nothing running: Esc fits the view again
    assert page.evaluate("window.clearfill.state.fitted")
    page.keyboard.press("Enter")  # Enter removes
    height = page.locator("#viewport").bounding_box()["height"]
    page.wait_for_function("window.clearfill.state.versions.length === 2", timeout=120_000)
    assert page.locator("#viewport").bounding_box()["height"] == height  # results do not push the photo up
    context.close()

    dark = browser.new_page(viewport={"width": 800, "height": 600}, color_scheme="dark")
    dark.goto(server_url)
    assert dark.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(24, 25, 28)"


# ----------------------------------------------------------------------------- 9. accessibility


def run_axe(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not vendored (make test fetches it from npm)")
def test_axe_finds_no_serious_violations_and_everything_is_reachable(page, tmp_path):
    assert run_axe(page) == []
    open_image(page, COFFEE)
    paint(page, SPOON)
    remove_and_wait(page)
    page.click("#split")
    assert run_axe(page) == []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert run_axe(page) == [], scheme

    # every control has a name; the canvas is labelled; the file pickers are buttons
    unnamed = page.evaluate("""[...document.querySelectorAll('button, input:not([hidden]), canvas[tabindex]')]
        .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels?.length)).map(e => e.id)""")
    assert unnamed == []
    assert page.get_attribute("#zoom-in", "aria-label") == "Zoom in"

    # Space held over the image pans; it does not press the button that has the focus
    page.evaluate("window.clearfill.undo()")  # back to the original with the spoon strokes
    assert not page.evaluate("window.clearfill.maskIsEmpty()")
    page.focus("#clear")
    page.locator("#mask").hover()
    page.keyboard.down(" ")
    page.keyboard.up(" ")
    assert not page.evaluate("window.clearfill.maskIsEmpty()")

    # the keyboard reaches Open first and it opens the file picker
    page.reload()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "open-button"
    page.evaluate("document.getElementById('open').addEventListener('click', () => window.picker = true)")
    page.keyboard.press("Enter")
    assert page.evaluate("window.picker")  # the file picker was asked for
    page.set_input_files("#open", str(COFFEE))
    page.wait_for_function("window.clearfill.state.versions.length === 1")


# ----------------------------------------------------------------------------- 10. phones


def test_the_phone_layout_has_one_row_of_large_controls(browser, server_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.goto(server_url)
    open_image(page, COFFEE)
    sizes = page.evaluate("""[...document.querySelectorAll('.toolbar button')]
        .map(b => { const r = b.getBoundingClientRect(); return [r.top, r.width, r.height]; })""")
    assert max(top for top, _, _ in sizes) - min(top for top, _, _ in sizes) < 4  # one row, scrolling sideways
    assert min(height for _, _, height in sizes) >= 44 and min(width for _, width, _ in sizes) >= 44
    assert page.evaluate("(t => t.scrollWidth > t.clientWidth)(document.querySelector('.toolbar'))")
    picture = page.locator("#mask").bounding_box()
    assert picture["width"] >= 380  # the photo uses the whole width
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor-phone.png"))
    context.close()


@pytest.mark.parametrize("width, height", [(390, 844), (844, 390)], ids=["portrait", "landscape"])
def test_the_phone_page_never_scrolls_or_zooms_as_a_whole_only_the_photo_does(browser, server_url, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True, is_mobile=True,
                                  device_scale_factor=3)
    page = context.new_page()
    page.goto(server_url)
    open_image(page, COFFEE)
    page_size = "[document.documentElement.scrollWidth, document.documentElement.scrollHeight, innerWidth, innerHeight]"
    assert page.evaluate(page_size) == [width, height, width, height]  # laid out at the phone's size (was 895 wide)
    cdp = context.new_cdp_session(page)

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": finger} for finger, (x, y) in enumerate(points)]})

    footer = page.locator("footer").bounding_box()
    fy = footer["y"] + footer["height"] / 2
    touch("touchStart", [(width / 2 - 20, fy), (width / 2 + 20, fy)])  # a pinch on the footer
    for step in range(1, 8):
        touch("touchMove", [(width / 2 - 20 - 15 * step, fy), (width / 2 + 20 + 15 * step, fy)])
    touch("touchEnd", [])
    toolbar = page.locator(".toolbar").bounding_box()
    ty = toolbar["y"] + toolbar["height"] / 2
    touch("touchStart", [(width - 40, ty)])  # a swipe along the toolbar scrolls the toolbar
    for step in range(1, 8):
        touch("touchMove", [(width - 40 - 40 * step, ty)])
    touch("touchEnd", [])
    assert page.evaluate("[visualViewport.scale, scrollX, scrollY]") == [1, 0, 0]
    assert page.evaluate("document.querySelector('.toolbar').scrollLeft") > 0
    photo = page.locator("#mask").bounding_box()
    assert photo["height"] >= (260 if height < width else 250) and photo["width"] >= min(width, 1.5 * 260) - 2
    page.click("#help-button")
    dialog = page.locator("#help").bounding_box()
    assert dialog["y"] >= 0 and dialog["y"] + dialog["height"] <= height and dialog["width"] <= width
    ARTIFACTS.mkdir(exist_ok=True)
    page.keyboard.press("Escape")
    page.screenshot(path=str(ARTIFACTS / f"editor-phone-{'portrait' if height > width else 'landscape'}.png"))
    context.close()


def test_two_finger_pinch_zooms_and_pans_without_painting(browser, server_url):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, has_touch=True)
    page = context.new_page()
    page.goto(server_url)
    open_image(page, COFFEE)
    fields = "(s => ({zoom: s.zoom, panX: s.panX, panY: s.panY}))(window.clearfill.state)"
    before = page.evaluate(fields)
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
    after = page.evaluate(fields)
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


# ----------------------------------------------------------------------------- select and find text


def test_select_by_box_and_find_text_mark_the_mask_for_editing(page, tmp_path):
    open_image(page, COFFEE)
    page.click("#select")
    assert page.get_attribute("#select", "aria-pressed") == "true"
    page.mouse.move(*image_point(page, 270, 190))  # a box dragged around the spoon
    page.mouse.down()
    page.mouse.move(*image_point(page, 360, 290), steps=6)
    page.mouse.up()
    page.wait_for_function("!window.clearfill.state.job && !window.clearfill.maskIsEmpty()", timeout=60_000)
    marked = page.evaluate("window.clearfill.currentMask().data.filter((v, i) => i % 4 === 3 && v).length")
    assert 500 < marked < 90 * 100  # the spoon, inside the box, not the whole box
    assert "Marked" in page.inner_text("#status") and page.is_enabled("#remove")
    assert "by colour (no SAM weights here" in page.inner_text("#status")  # which selector ran

    pytest.importorskip("onnxruntime")
    captioned = tmp_path / "captioned.png"
    photo = Image.open(COFFEE).convert("RGB")
    ImageDraw.Draw(photo).text((40, 330), "Summer 2019", font=ImageFont.load_default(size=40), fill=(255, 230, 40),
                               stroke_width=2, stroke_fill=(0, 0, 0))
    photo.save(captioned)
    open_image(page, captioned)
    page.click("#find-text")
    page.wait_for_function("!window.clearfill.state.job", timeout=60_000)
    if "Could not find a mask" in page.inner_text("#status"):
        pytest.skip(page.inner_text("#status"))
    mask = page.evaluate("window.clearfill.currentMask().data.filter((v, i) => i % 4 === 3 && v).length")
    assert mask > 500 and page.is_enabled("#remove")
    assert page.evaluate("document.activeElement.id") == "mask"  # not the page body: Enter now removes


def test_a_mask_file_of_another_shape_is_refused_one_of_the_same_shape_scaled_and_enter_removes(page, tmp_path):
    open_image(page, COFFEE)  # 600 x 400
    square, scaled = tmp_path / "square.png", tmp_path / "double.png"
    Image.new("L", (736, 736), 255).save(square)
    page.set_input_files("#mask-file", str(square))
    page.wait_for_function("document.getElementById('status').textContent.includes('736 x 736')")
    assert page.evaluate("window.clearfill.state.hasMask") is False
    assert "Nothing was added" in page.inner_text("#status")

    double = np.zeros((800, 1200), np.uint8)
    double[150:550, 740:840] = 255  # the spoon's column, at twice the size
    Image.fromarray(double).save(scaled)
    page.set_input_files("#mask-file", str(scaled))
    page.wait_for_function("window.clearfill.state.hasMask")
    assert "scaled from 1200 x 800" in page.inner_text("#status")
    alpha = page.evaluate("Array.from(window.clearfill.currentMask().data.filter((v, i) => i % 4 === 3))")
    marked = np.asarray(alpha).reshape(400, 600) > 0
    assert marked[75:275, 370:420].all() and not marked[:, :360].any() and not marked[:, 425:].any()
    page.keyboard.press("Enter")  # right after choosing the file: the focus is on the photo, not the button
    page.wait_for_function("window.clearfill.state.versions.length > 1 && !window.clearfill.state.job",
                           timeout=120_000)


def test_strokes_on_a_24_mp_photo_keep_patches_not_copies_of_the_mask(page, tmp_path):
    big = tmp_path / "big.jpg"
    Image.open(COFFEE).convert("RGB").resize((6000, 4000)).save(big, quality=85)
    page.evaluate("window.clearfill.state.limits = {max_pixels: 40e6, max_upload_mb: 100}")
    open_image(page, big)
    for offset in range(3):
        paint(page, [(x + offset * 600, 2000) for x in (1000, 1200, 1400)])
    kept = "(e.pixels || e.mask)"  # whatever an undo entry holds of the mask
    undo_pixels = page.evaluate(
        f"window.clearfill.state.undo.reduce((n, e) => n + ({kept} ? {kept}.data.length / 4 : 0), 0)")
    assert 3 == page.evaluate("window.clearfill.state.undo.length")
    assert undo_pixels < 0.05 * 6000 * 4000  # each entry the box its stroke touched, not a 24 MP copy
    page.click("#undo")
    page.wait_for_function("window.clearfill.state.undo.length === 2")
    def marked_in(x, y, w, h):
        return page.evaluate(f"""document.getElementById('mask').getContext('2d').getImageData({x}, {y}, {w}, {h})
                                 .data.filter((v, i) => i % 4 === 3 && v).length""")
    assert marked_in(2300, 1700, 800, 600) == 0  # the third stroke (x 2200-2600) is gone, the others stay
    assert marked_in(1000, 1900, 600, 200) > 0 and marked_in(1700, 1900, 400, 200) > 0
    assert page.evaluate("window.clearfill.state.hasMask")


# ----------------------------------------------------------------------------- issue 31: sizes, words, time


@pytest.mark.parametrize("width", [1440, 1280, 1024])
def test_every_tool_is_in_view_at_laptop_widths_and_a_disabled_remove_is_solid(browser, server_url, width):
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(server_url)
    open_image(page, COFFEE)
    toolbar = "document.querySelector('.toolbar')"
    assert page.evaluate(f"{toolbar}.scrollWidth <= {toolbar}.clientWidth")  # no sideways scroll
    rights = page.evaluate("[...document.querySelectorAll('.toolbar button')]"
                           ".map(b => b.getBoundingClientRect().right)")
    assert max(rights) <= width
    remove = page.locator("#remove").bounding_box()
    for other in ("#split", "#help-button", "#zoom-in", "#compare"):
        box = page.locator(other).bounding_box()
        assert box["x"] + box["width"] <= remove["x"]  # none under Remove
    assert page.is_disabled("#remove")
    assert page.evaluate("getComputedStyle(document.getElementById('remove')).opacity") == "1"
    assert page.evaluate("getComputedStyle(document.getElementById('remove')).backgroundColor").startswith("rgb(")
    names = page.evaluate("[...document.querySelectorAll('.toolbar button')].map(b => b.textContent.trim() || "
                          "b.getAttribute('aria-label'))")
    assert all(names) and "Split" in names  # the words stay for screen readers
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"editor-{width}.png"))
    page.close()


def test_the_default_brush_covers_an_object_and_is_never_under_a_fingertip(browser, server_url):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server_url)
    open_image(page, COFFEE)
    assert brush_pixels(page) >= 20  # 5% of the short side: the spoon's handle in one stroke (3% was 12 px)
    page.close()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True).new_page()
    phone.goto(server_url)
    open_image(phone, COFFEE)
    on_screen = brush_pixels(phone) * phone.evaluate("window.clearfill.state.zoom")
    assert on_screen >= 24  # was 7.8 screen px
    phone.context.close()


def test_the_clock_ticks_inside_a_long_stage_and_select_shows_a_moving_bar(page, tmp_path):
    big = tmp_path / "big.png"
    Image.open(COFFEE).convert("RGB").resize((2400, 1600)).save(big)
    open_image(page, big)
    paint(page, [(x * 4, y * 4) for x, y in SPOON])
    page.click("#remove")
    seen = set()
    deadline = time.time() + 60
    while page.evaluate("window.clearfill.state.job") and time.time() < deadline:
        text = page.inner_text("#progress-text")
        seen.add((text.split(" (")[0], text.rsplit("(", 1)[-1]))
        time.sleep(0.25)
    stages = {stage for stage, _ in seen}
    ticking = [stage for stage in stages if len({s for t, s in seen if t == stage}) > 1]
    assert ticking, seen  # within one stage the seconds moved on
    page.click("#select")
    page.mouse.click(*image_point(page, 1480, 1000))
    assert page.evaluate("document.getElementById('progress-bar').hasAttribute('value')") is False
    page.wait_for_function("!window.clearfill.state.job", timeout=60_000)


def test_a_new_photo_asks_before_dropping_results_and_a_pasted_image_opens(page, other_photo):
    open_image(page, COFFEE)
    paint(page, SPOON)
    remove_and_wait(page)
    asked = []

    def answer(dialog, accept):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.set_input_files("#open", str(other_photo))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Kept the results')")
    assert asked and "not downloaded" in asked[0]
    assert page.evaluate("window.clearfill.state.versions.length") == 2  # nothing lost
    with page.expect_download():
        page.click("#download")
    open_image(page, other_photo)  # downloaded: no question
    assert len(asked) == 1 and page.evaluate("[window.clearfill.state.versions.length, "
                                             "document.getElementById('mask').width]") == [1, 500]
    # a result downloaded after going back to an earlier one leaves the later one unsaved
    open_image(page, COFFEE)
    for stroke in (SPOON, CUP_HANDLE):
        paint(page, stroke)
        remove_and_wait(page)
    page.click("#history li:nth-child(2) button")  # back to the first result
    with page.expect_download():
        page.click("#download")
    page.once("dialog", lambda dialog: answer(dialog, False))
    page.set_input_files("#open", str(other_photo))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Kept the results')")
    assert len(asked) == 2 and "A result" in asked[1]
    page.once("dialog", lambda dialog: answer(dialog, True))
    # an image pasted onto the page opens it
    encoded = base64.b64encode(COFFEE.read_bytes()).decode()
    generation = page.evaluate("window.clearfill.state.generation")
    page.evaluate(f"""(() => {{
        const bytes = Uint8Array.from(atob('{encoded}'), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'pasted.png', {{ type: 'image/png' }}));
        document.dispatchEvent(new ClipboardEvent('paste', {{ clipboardData: data, bubbles: true }}));
    }})()""")
    page.wait_for_function(f"window.clearfill.state.generation > {generation}")
    assert page.evaluate("document.getElementById('mask').width") == 600 and "pasted.png" in page.inner_text("#status")


def test_remove_on_release_runs_each_stroke_and_queues_strokes_made_meanwhile(browser, server_url, tmp_path):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    touch_page = phone.new_page()
    touch_page.goto(server_url)
    assert touch_page.is_checked("#auto-remove")  # on by default on a touch screen
    phone.close()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server_url)
    assert not page.is_checked("#auto-remove")  # and off with a mouse
    large = tmp_path / "coffee-1200.png"  # large enough that a removal lasts while the next stroke is made
    Image.open(COFFEE).convert("RGB").resize((1200, 800), Image.Resampling.LANCZOS).save(large)
    scaled = lambda points: [(x * 2, y * 2) for x, y in points]  # noqa: E731
    open_image(page, large)
    page.check("#auto-remove")
    paint(page, scaled(SPOON))
    assert page.evaluate("window.clearfill.state.job?.what") == "remove"  # the stroke's end ran Remove
    paint(page, scaled(CUP_HANDLE))
    assert page.evaluate("window.clearfill.state.queued.length") == 1 and "waits" in page.inner_text("#status")
    page.wait_for_function("window.clearfill.state.versions.length === 3 && !window.clearfill.state.job",
                           timeout=120_000)
    original, first, second = (bitmap_pixels(page, f"window.clearfill.state.versions[{i}].bitmap") for i in range(3))
    handle, spoon = near(scaled(CUP_HANDLE), (800, 1200), 10), near(scaled(SPOON), (800, 1200), 10)
    assert np.abs(first - original)[handle].max() == 0  # the first removal had only the spoon
    assert np.abs(first - original)[spoon].mean() > 5
    assert np.abs(second - first)[handle].mean() > 5  # the queued stroke was removed next
    assert not page.evaluate("window.clearfill.state.hasMask")
    # cancelled while a stroke waits: the stroke becomes a mark, nothing more runs
    paint(page, scaled(SPOON))
    paint(page, scaled(CUP_HANDLE))
    page.click("#cancel")
    page.wait_for_function("!window.clearfill.state.job")
    assert page.evaluate("[window.clearfill.state.versions.length, window.clearfill.state.hasMask, "
                         "window.clearfill.state.queued.length]") == [3, True, 0]
    assert "press Remove" in page.inner_text("#status")
    page.close()


def test_copy_puts_the_result_shown_on_the_clipboard_as_png(browser, server_url, tmp_path):
    context = browser.new_context(viewport={"width": 1440, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server_url)
    photo = tmp_path / "coffee.jpg"  # a JPEG result: the clipboard takes PNG, so it is re-encoded
    Image.open(COFFEE).convert("RGB").save(photo, quality=95)
    open_image(page, photo)
    assert page.is_disabled("#copy")  # nothing to copy but the photo itself
    paint(page, SPOON)
    remove_and_wait(page)
    page.click("#copy")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Copied')")
    copied = "await (await navigator.clipboard.read())[0].getType('image/png')"
    pasted = bitmap_pixels(page, f"await createImageBitmap({copied})")
    assert pasted.shape == (400, 600, 3)
    assert np.abs(pasted - canvas_pixels(page)).max() <= 2  # the result shown, not the photo
    original = np.asarray(Image.open(photo).convert("RGB"), np.int16)
    assert np.abs(pasted - original)[near(SPOON, (400, 600), 8)].mean() > 5
    context.close()
