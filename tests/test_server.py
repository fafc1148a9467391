"""The HTTP API: every status it promises, and concurrent requests through the queue."""

import asyncio
import io as stdio
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from clearfill.server import ServerSettings, create_app  # noqa: E402
from helpers import disk_mask, photo_like  # noqa: E402

H, W = 64, 80


def png(array, mode=None, fmt="PNG") -> bytes:
    buffer = stdio.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def client():
    return TestClient(create_app(ServerSettings(preset="fast", max_upload_mb=1, max_pixels=200_000)))


@pytest.fixture
def picture():
    return photo_like(np.random.default_rng(0), H, W)


def post(client, image, mask, options=None, params=""):
    files = {"image": ("photo.png", image, "image/png"), "mask": ("mask.png", mask, "image/png")}
    data = {"options": json.dumps(options)} if options is not None else {}
    return client.post("/v1/remove" + params, files=files, data=data)


def test_remove_returns_the_image_in_the_inputs_format_with_headers(client, picture):
    mask = disk_mask(H, W, 40, 30, 9)
    response = post(client, png(picture), png(mask))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(stdio.BytesIO(response.content)))
    from clearfill.imaging import grow

    hole = grow(mask > 0, 2)  # the fast preset grows the mask by 2 px
    assert np.array_equal(out[~hole], picture[~hole]) and not np.array_equal(out[hole], picture[hole])
    assert response.headers["x-clearfill-seed"] and "remove" in response.headers["x-clearfill-stages"]
    assert "refine" in json.loads(response.headers["x-clearfill-skipped"])
    jpeg = post(client, png(picture, fmt="JPEG"), png(mask))
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_stages_json_carries_each_stage_picture(client, picture):
    response = post(client, png(picture), png(disk_mask(H, W, 40, 30, 9)), {"seed": 3}, "?stages=1")
    body = response.json()
    assert response.status_code == 200 and body["seed"] == 3
    assert {"mask", "remove", "crop", "stitch"} <= set(body["pictures"])
    assert body["image"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("case, status, fragment", [
    ("not_an_image", 400, "not an image"),
    ("size_mismatch", 400, "but the image is"),
    ("full_mask", 400, "covers the whole image"),
    ("too_many_pixels", 413, "over the limit"),
    ("too_many_bytes", 413, "upload limit"),
    ("text_type", 415, "not an image"),
    ("bad_json", 422, "not valid JSON"),
    ("bad_preset", 422, "unknown preset"),
    ("bad_override", 422, "unknown parameter"),
    ("bad_option", 422, "unknown option"),
    ("overrides_not_object", 422, "overrides must be an object"),
    ("seed_not_int", 422, "seed must be an integer"),
])
def test_errors_are_json_with_the_right_status(client, picture, case, status, fragment):
    image, mask, options = png(picture), png(disk_mask(H, W, 40, 30, 9)), None
    image_type = "image/png"
    if case == "not_an_image":
        image = b"hello"
    elif case == "size_mismatch":
        mask = png(disk_mask(H + 1, W, 40, 30, 9))
    elif case == "full_mask":
        mask = png(np.full((H, W), 255, np.uint8))
    elif case == "too_many_pixels":
        image = png(np.zeros((500, 500, 3), np.uint8))
    elif case == "too_many_bytes":
        image = np.random.default_rng(1).integers(0, 256, 1_200_000, dtype=np.uint8).tobytes()
    elif case == "text_type":
        image_type = "text/plain"
    elif case == "bad_json":
        options = "{nope"
    elif case == "bad_preset":
        options = {"preset": "nope"}
    elif case == "bad_override":
        options = {"overrides": {"crop.width": 3}}
    elif case == "bad_option":
        options = {"colour": "red"}
    elif case == "overrides_not_object":
        options = {"overrides": ["crop.padding", 3]}
    elif case == "seed_not_int":
        options = {"seed": "three"}
    files = {"image": ("photo.png", image, image_type), "mask": ("mask.png", mask, "image/png")}
    data = {"options": options if isinstance(options, str) else json.dumps(options)} if options is not None else {}
    response = client.post("/v1/remove", files=files, data=data)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_info_endpoints(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert {"reference", "fast", "offline"} <= set(client.get("/v1/presets").json())
    models = client.get("/v1/models").json()
    assert any(m["name"] == "big-lama" for m in models["models"])
    assert any(r["name"] == "exemplar" and r["usable"] for r in models["removers"])
    assert client.get("/docs").status_code == 200 and "/v1/remove" in client.get("/openapi.json").text


def test_concurrent_requests_queue_or_get_503_never_fail(picture):
    import httpx

    app = create_app(ServerSettings(preset="offline", queue_size=2))
    image, mask = png(picture), png(disk_mask(H, W, 40, 30, 9))

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            files = {"image": ("p.png", image, "image/png"), "mask": ("m.png", mask, "image/png")}
            return await asyncio.gather(*[http.post("/v1/remove", files=files) for _ in range(8)])

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503} and statuses.count(200) >= 3  # the burst is over the queue limit
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] and "busy" in response.json()["error"]
        else:
            out = np.asarray(Image.open(stdio.BytesIO(response.content)))
            assert out.shape == picture.shape


def test_a_float_tiff_comes_back_as_the_same_float_tiff(client, picture):
    gray = picture[..., 0].astype(np.float32) * 3.5 - 100  # values far outside 0..1
    tiff = stdio.BytesIO()
    Image.fromarray(gray, "F").save(tiff, format="TIFF")
    mask = disk_mask(H, W, 40, 30, 9)
    response = post(client, tiff.getvalue(), png(mask))
    assert response.status_code == 200 and response.headers["content-type"] == "image/tiff"
    out = Image.open(stdio.BytesIO(response.content))
    assert out.mode == "F"
    values = np.asarray(out)
    far = ~(np.asarray(Image.fromarray(mask).filter(ImageFilter.MaxFilter(31))) > 0)
    assert np.array_equal(values[far], gray[far]) and not np.array_equal(values, gray)
