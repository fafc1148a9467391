"""The HTTP API over the library's ``remove`` call.

Pipelines (and their models) are built once per preset and shared. Removals run
one at a time per device, in a worker thread; requests beyond ``queue_size``
waiting get 503 with Retry-After instead of piling up. Library errors become
JSON errors with the right status: 400 bad image or mask, 413 too large, 415 not
an image type, 422 bad options, 503 busy.
"""

from __future__ import annotations

import asyncio
import base64
import io as stdio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__, io
from ..api import build_pipeline, remove, resolve_config
from ..config import PRESETS
from ..errors import ImageTooLargeError, InvalidConfigError, InvalidInputError
from ..imaging import quantize
from ..pipeline import Pipeline

_CHUNK = 1 << 20
_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp"}


@dataclass(frozen=True)
class ServerSettings:
    preset: str = "offline"  # default preset for requests that name none
    max_pixels: int = 40_000_000
    max_upload_mb: float = 50.0
    queue_size: int = 8  # removals allowed to wait for the device; more get 503
    device: str = "auto"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class _Pipelines:
    """One pipeline per (preset, overrides), built on first use and kept."""

    def __init__(self, device: str):
        self.device = device
        self._built: dict[str, tuple[Any, Pipeline]] = {}
        self._lock = threading.Lock()

    def get(self, preset: str, overrides: dict) -> tuple[Any, Pipeline]:
        key = json.dumps([preset, overrides], sort_keys=True, default=str)
        with self._lock:
            if key not in self._built:
                config = resolve_config(preset, overrides)
                self._built[key] = (config, build_pipeline(config, device=self.device))
            return self._built[key]


def _parse_options(text: str | None, default_preset: str) -> dict:
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise ApiError(422, f"options is not valid JSON: {exc.msg}") from None
    if not isinstance(options, dict):
        raise ApiError(422, "options must be a JSON object")
    unknown = set(options) - {"preset", "overrides", "seed", "candidates"}
    if unknown:
        raise ApiError(422, f"unknown option {sorted(unknown)[0]!r}; known: preset, overrides, seed, candidates")
    if not isinstance(options.get("overrides") or {}, dict):
        raise ApiError(422, "overrides must be an object of stage.param: value")
    overrides = dict(options.get("overrides") or {})
    if options.get("candidates") is not None:
        overrides["refine.candidates"] = options["candidates"]
    seed = options.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ApiError(422, "seed must be an integer")
    return {"preset": options.get("preset", default_preset), "overrides": overrides, "seed": seed}


async def _read_capped(upload: UploadFile, limit: int, what: str) -> bytes:
    content_type = (upload.content_type or "").split(";")[0].strip()
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise ApiError(415, f"{what} has content type {content_type}, not an image")
    chunks, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what} is larger than the {limit / 1e6:.0f} MB upload limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _data_url(picture: np.ndarray) -> str:
    from PIL import Image

    buffer = stdio.BytesIO()
    Image.fromarray(quantize(picture)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def create_app(settings: ServerSettings = ServerSettings()) -> FastAPI:
    app = FastAPI(title="clearfill", version=__version__,
                  description="Remove objects from photos: POST an image and a mask, get the filled image back.")
    pipelines = _Pipelines(settings.device)
    device_lock = asyncio.Lock()  # model stages run one at a time on the device
    in_flight = {"count": 0}  # removals running or waiting (touched only on the event loop)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    static = Path(__file__).with_name("static")
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def editor():
        return FileResponse(static / "index.html")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__}

    @app.get("/v1/presets")
    async def presets():
        return {name: config.to_dict() for name, config in PRESETS.items()}

    @app.get("/v1/models")
    async def models():
        from ..models import REGISTRY, store
        from ..removers import REGISTRY as REMOVERS

        return {
            "models": [{"name": m.name, "kind": m.kind, "size_mb": m.size_mb, "license": m.license,
                        "downloaded": store.is_downloaded(m)} for m in REGISTRY.values()],
            "removers": [{"name": r.name, "summary": r.summary, "usable": r.usable()[0]} for r in REMOVERS.values()],
        }

    @app.post("/v1/remove")
    async def remove_endpoint(image: UploadFile = File(...), mask: UploadFile = File(...),
                              options: str | None = Form(None), stages: bool = Query(False)):
        limit = int(settings.max_upload_mb * 1e6)
        image_bytes = await _read_capped(image, limit, "image")
        mask_bytes = await _read_capped(mask, limit, "mask")
        parsed = _parse_options(options, settings.preset)
        try:
            config, pipeline = pipelines.get(parsed["preset"], parsed["overrides"])
        except InvalidConfigError as exc:
            raise ApiError(422, str(exc)) from None
        if in_flight["count"] > settings.queue_size:  # one running plus queue_size waiting
            raise ApiError(503, "busy: too many removals waiting; retry shortly", {"Retry-After": "2"})
        in_flight["count"] += 1
        try:
            async with device_lock:
                result = await asyncio.to_thread(_run, image_bytes, mask_bytes, config, pipeline, parsed["seed"],
                                                 stages, settings.max_pixels)
        finally:
            in_flight["count"] -= 1
        return _respond(result, stages)

    return app


def _run(image_bytes, mask_bytes, config, pipeline, seed, keep_stages, max_pixels):
    try:
        source = io.load_image(stdio.BytesIO(image_bytes), max_pixels=max_pixels)
        return remove(source, stdio.BytesIO(mask_bytes), config, pipeline=pipeline, seed=seed,
                      keep_stages=keep_stages, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None


def _respond(result, stages: bool):
    headers = {
        "X-Clearfill-Seed": str(result.seed),
        "X-Clearfill-Stages": ",".join(r.name for r in result.stages if r.ran),
        "X-Clearfill-Skipped": json.dumps(result.skipped),
        "X-Clearfill-Timings": json.dumps({k: round(v, 4) for k, v in result.timings.items()}),
    }
    fmt, data = _encoded(result)
    if stages:
        return JSONResponse({
            "seed": result.seed,
            "stages": [{"name": r.name, "ran": r.ran, "seconds": r.seconds, "note": r.note} for r in result.stages],
            "pictures": {name: _data_url(p) for name, p in result.stage_pictures.items()},
            "image": _data_url(result.pixels),
            "output": f"data:{_MEDIA[fmt]};base64," + base64.b64encode(data).decode(),  # the input's format and size
        }, headers=headers)
    return Response(data, media_type=_MEDIA[fmt], headers=headers)


def _encoded(result) -> tuple[str, bytes]:
    """The output in the input's format (PNG when the input's cannot hold it, e.g. alpha in JPEG)."""
    fmt = result.source.format if result.source.format in _MEDIA else "PNG"
    try:
        return fmt, io.encode_image(result.pixels, result.source, fmt)
    except InvalidInputError:
        return "PNG", io.encode_image(result.pixels, result.source, "PNG")
