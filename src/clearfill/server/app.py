"""The HTTP API over the library's ``remove`` call.

Requests pick one of the server's presets and change per-call settings within the
allow-list (``requests``); models are the server's (its presets and overrides)
and live in the process-wide pool, so a pipeline is built per request for
nothing. Removals run one at a time per device in a worker thread (decoding,
the pipeline and encoding alike: the event loop only moves bytes), at most
``queue_size`` waiting; more get 503 with Retry-After. ``/v1/remove`` answers
with the image; ``/v1/jobs`` runs the same removal as a job whose progress
streams as server-sent events. Every error is JSON ``{"error", "code"}``; a 500
is a bug, logged with its traceback under the request id it answers with.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import io as stdio
import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__, io, models, removers
from ..api import build_pipeline, remove, settle
from ..config import PRESETS, PipelineConfig
from ..errors import (
    Cancelled,
    ClearfillError,
    ImageTooLargeError,
    InvalidConfigError,
    InvalidInputError,
    ModelNotAvailableError,
)
from ..imaging import quantize
from ..pipeline import Progress
from . import requests
from .guard import LOOPBACK_NAMES, Guard, GuardSettings
from .jobs import FINAL, Jobs
from .requests import RequestError
from .worker import Bug, ProcessWorker, ThreadWorker, WorkerCrashed, removal_executor

log = logging.getLogger("clearfill.server")
_CHUNK = 1 << 20
_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff", "BMP": "image/bmp"}
_PARTS = {"image", "mask", "options"}


@dataclass(frozen=True)
class ServerSettings:
    preset: str = "reference"  # for requests that name none
    overrides: Mapping[str, Any] = field(default_factory=dict)  # the server's own: models, devices, anything
    max_pixels: int = 40_000_000
    max_upload_mb: float = 50.0  # per image or mask
    queue_size: int = 8  # removals allowed to wait for the device; more get 503
    device: str = "auto"
    token: str | None = None
    hosts: tuple[str, ...] = LOOPBACK_NAMES  # Host names answered; () for any
    origins: tuple[str, ...] = ()  # other origins allowed to call the API
    body_timeout_s: float = 30.0  # the longest a request body may stall
    upload_timeout_s: float = 300.0  # the longest a whole request body may take
    job_ttl_s: float = 600.0
    isolation: str = "process"  # where removals run: "process" (their own) or "thread" (embedding, tests)

    def presets(self) -> dict[str, PipelineConfig]:
        return {name: config.with_overrides(self.overrides) if self.overrides else config
                for name, config in PRESETS.items()}


def settled_presets(settings: ServerSettings) -> tuple[dict[str, PipelineConfig], dict[str, str]]:
    """The presets as requests run them, settled once at start (``api.settle``: "auto"
    resolved, models fetched), and the remover each chose, in words. A preset with no
    usable remover stays as it is and says why."""
    presets, removers_chosen = settings.presets(), {}
    for name, config in presets.items():
        try:
            presets[name], removers_chosen[name] = settle(config, device=settings.device)
        except ClearfillError as exc:
            removers_chosen[name] = f"none usable: {exc}"
    return presets, removers_chosen


def runs(config: PipelineConfig, device: str, remover: str | None = None) -> dict[str, str]:
    """What a preset will run on this server, in words (judged without downloading)."""
    if remover is None:
        try:
            remover = removers.choose(config.remove.method, download=False).describe()
        except ClearfillError as exc:
            remover = f"none usable: {exc}"
    upscaler = config.resize.upscaler or config.resize.method
    refiner = config.refine.model or "none"
    if config.refine.model and device == "cpu" and not config.refine.on_cpu:
        refiner += " (skipped on the CPU)"
    return {"remove": remover, "upscale": upscaler, "refine": refiner}


def error_for(exc: ClearfillError) -> RequestError:
    if isinstance(exc, ImageTooLargeError):
        return RequestError(413, str(exc), "too_large")
    if isinstance(exc, InvalidInputError):
        return RequestError(400, str(exc), "bad_input")
    if isinstance(exc, InvalidConfigError):
        return RequestError(422, str(exc), "bad_options")
    if isinstance(exc, ModelNotAvailableError):
        return RequestError(503, str(exc), "model_unavailable", {"Retry-After": "60"})
    if isinstance(exc, Cancelled):
        return RequestError(409, "the job was cancelled", "cancelled")
    return RequestError(500, f"the server's model setup failed: {exc}", "model_error")


# ----------------------------------------------------------------------------- the work (in a worker thread)


@dataclass(frozen=True)
class Upload:
    image: bytes
    mask: bytes | None  # None: found on the image (request.detect)
    request: requests.Request
    stages: str = ""  # "inline": answer with JSON holding every stage's picture; "previews": answer with the
    # image and keep small stage pictures beside it (a job's, fetched when someone looks)
    mask_only: bool = False  # answer with the mask found, not a removal


@dataclass(frozen=True)
class Outcome:
    media_type: str
    body: bytes
    headers: dict[str, str]
    seed: int
    stages: list[dict] | None = None  # what each stage did (name, ran, seconds, note)
    previews: bytes | None = None  # JSON {"stages", "pictures"}: the stage pictures, small, as data URLs


PREVIEW_SIDE = 1024  # a job's stage pictures are at most this long: enough to see what a stage did

def _data_url(picture: np.ndarray) -> str:
    from PIL import Image

    buffer = stdio.BytesIO()
    # looked at, not kept: fast over small
    Image.fromarray(quantize(picture)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _encoded(result) -> tuple[str, bytes]:
    """The output in the input's format (PNG when the input's cannot hold it, e.g. alpha in JPEG)."""
    fmt = result.source.format if result.source.format in _MEDIA else "PNG"
    try:
        return fmt, io.encode_image(result.pixels, result.source, fmt)
    except InvalidInputError:
        return "PNG", io.encode_image(result.pixels, result.source, "PNG")


def _found_mask(source, request: requests.Request) -> Outcome:
    from PIL import Image

    from ..detect import as_selection, find_mask, select_with, selector_for

    headers = {}
    if request.detect is not None:
        found = find_mask(source, request.detect)
    else:
        found = select_with(source.rgb, as_selection(request.select))
        headers["X-Clearfill-Selector"] = selector_for()  # the editor says which ran
    buffer = stdio.BytesIO()
    Image.fromarray((found * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    return Outcome("image/png", buffer.getvalue(), {"X-Clearfill-Mask-Area": f"{found.mean():.5f}", **headers}, 0)


def process(settings: ServerSettings, presets: dict[str, PipelineConfig], upload: Upload,
            progress: Progress, deliver: Callable[[Outcome], None] = lambda outcome: None) -> Outcome:
    """One removal, start to finish: decode, build the pipeline (pooled models), run, encode.
    Previews are made after the result is handed to ``deliver``: they never delay it.
    Nothing is downloaded here: the presets were settled when the server started."""
    with models.store.no_downloads():
        return _process(settings, presets, upload, progress, deliver)


def _process(settings: ServerSettings, presets: dict[str, PipelineConfig], upload: Upload,
             progress: Progress, deliver: Callable[[Outcome], None]) -> Outcome:
    request = upload.request
    try:
        config = presets[request.preset].with_overrides(request.overrides)
        source = io.load_image(stdio.BytesIO(upload.image), max_pixels=settings.max_pixels)
        if upload.mask_only:
            return _found_mask(source, request)
        mask = None
        if upload.mask is not None:
            mask = io.load_mask(stdio.BytesIO(upload.mask), source.size, resize_mask=request.resize_mask,
                                max_pixels=settings.max_pixels)
        pipeline = build_pipeline(config, device=settings.device)
        keep = {"inline": True, "previews": "later"}.get(upload.stages, False)
        result = remove(source, mask, pipeline=pipeline, seed=request.seed, keep_stages=keep,
                        stage_picture_side=PREVIEW_SIDE if upload.stages == "previews" else None,
                        progress=progress, detect=request.detect if mask is None else None,
                        select=request.select if mask is None else None)
        progress.check()  # encoding a large image takes seconds: not for a run already cancelled
        fmt, data = _encoded(result)
        if upload.stages == "inline":
            progress.check()  # and so do full-size stage pictures
    except ClearfillError as exc:
        raise error_for(exc) from None
    headers = {
        "X-Clearfill-Seed": str(result.seed),
        "X-Clearfill-Stages": ",".join(r.name for r in result.stages if r.ran),
        "X-Clearfill-Skipped": json.dumps(result.skipped),
        "X-Clearfill-Timings": json.dumps({k: round(v, 4) for k, v in result.timings.items()}),
    }
    records = [{"name": r.name, "ran": r.ran, "seconds": r.seconds, "note": r.note} for r in result.stages]
    if upload.stages != "inline":
        outcome = Outcome(_MEDIA[fmt], data, headers, result.seed, records)
        if upload.stages != "previews":
            return outcome
        deliver(outcome)
        pictures = {name: _data_url(p) for name, p in result.make_stage_pictures().items()}
        return dataclasses.replace(outcome, previews=json.dumps({"stages": records, "pictures": pictures}).encode())
    pictures = {name: _data_url(p) for name, p in result.stage_pictures.items()}
    body = json.dumps({
        "seed": result.seed,
        "stages": records,
        "pictures": pictures,
        "image": _data_url(result.pixels),
        "output": f"data:{_MEDIA[fmt]};base64," + base64.b64encode(data).decode(),  # the input's format and size
    }).encode()
    return Outcome("application/json", body, headers, result.seed)


def warm_up(settings: ServerSettings, presets: dict[str, PipelineConfig]) -> None:
    """A new worker's first moments, spent before any request: a tiny removal with the
    default preset (a JPEG in and out, the detail pass off) imports and loads what a
    removal uses, and a tiny exemplar fill loads its compiled kernels (from numba's cache)
    where any preset fills with it. Without this the first 24 MP removal took 9.7 s
    against 5.5 s for the next. Quietly: it is the worker's own."""
    import warnings

    from PIL import Image

    rng = np.random.default_rng(0)
    photo, mask = stdio.BytesIO(), stdio.BytesIO()
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(photo, format="JPEG")
    hole = np.zeros((48, 64), np.uint8)
    hole[18:30, 24:36] = 255
    Image.fromarray(hole).save(mask, format="PNG")
    request = requests.Request(settings.preset, overrides={"refine.model": "none"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        process(settings, presets, Upload(photo.getvalue(), mask.getvalue(), request, stages="previews"), Progress())
        if any(config.remove.method == "exemplar" for config in presets.values()):
            removers.create("exemplar", {}, device="cpu")(rng.random((48, 48, 3), dtype=np.float32), hole[:48, :48] > 0)


def internal_error(what: str, traceback_text: str | None = None, exc: BaseException | None = None) -> RequestError:
    """A 500 for a bug: logged here with its traceback, answered with only a request id."""
    request_id = secrets.token_hex(6)
    log.error("%s failed (request id %s)%s", what, request_id, f"\n{traceback_text}" if traceback_text else "",
              exc_info=exc)
    return RequestError(500, f"internal error (request id {request_id})", "internal", extra={"request_id": request_id})


class Device:
    """Removals one at a time, in a worker process of their own (or a thread, see
    ``worker``); at most ``queue_size`` more may wait (one running plus that many),
    others get 503 at once."""

    def __init__(self, settings: ServerSettings, presets: dict[str, PipelineConfig]):
        self.queue_size, self.admitted = settings.queue_size, 0
        work = functools.partial(process, settings, presets)
        warm = functools.partial(warm_up, settings, presets)
        self.worker = ProcessWorker(work, warm=warm) if settings.isolation == "process" else ThreadWorker(work)
        self._lock: asyncio.Lock | None = None
        self._waiter = removal_executor()

    def admit(self) -> None:
        if self.admitted > self.queue_size:
            raise RequestError(503, "busy: too many removals waiting; retry shortly", "busy", {"Retry-After": "2"})
        self.admitted += 1

    async def run(self, upload: Upload, listener=None, cancel=None, on_enter=None, on_result=None) -> Outcome:
        """Run one removal (already admitted) when the device is free; release its place
        (also when the waiting task is cancelled: the queue slot is free at once).
        ``on_enter()`` is called once the device is this run's; a run cancelled before
        then never starts. ``on_result(outcome)``, from the waiting thread: the result,
        before what can wait (a job's previews) is made."""
        self._lock = self._lock or asyncio.Lock()
        try:
            async with self._lock:
                if on_enter is not None:
                    on_enter()
                if cancel is not None and cancel.is_set():
                    raise error_for(Cancelled("cancelled"))
                return await asyncio.get_running_loop().run_in_executor(self._waiter, self.worker, upload,
                                                                        listener, cancel, on_result)
        except WorkerCrashed as crash:
            raise internal_error(f"removal ({crash})") from None
        except Bug as bug:
            raise internal_error("removal", bug.text) from None
        finally:
            self.admitted -= 1

    def close(self) -> None:
        self.worker.close()
        self._waiter.shutdown(wait=False)


# ----------------------------------------------------------------------------- the app


async def _read_part(upload: UploadFile, limit: int, what: str) -> bytes:
    content_type = (upload.content_type or "").split(";")[0].strip()
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise RequestError(415, f"{what} has content type {content_type}, not an image", "unsupported_type")
    chunks, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"{what} is larger than the {limit / 1e6:.0f} MB upload limit", "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return _error_response(RequestError(422, "; ".join(problems) or "invalid request", "bad_request"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc.__cause__, RequestError):  # raised while FastAPI read the body: the cap or a stall
            return _error_response(exc.__cause__)
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(exc.status_code, "http_error")
        return _error_response(RequestError(exc.status_code, str(exc.detail), code, dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        return _error_response(internal_error(f"{request.method} {request.url.path}", exc=exc))


def create_app(settings: ServerSettings = ServerSettings()):
    """The ASGI app: the API behind its guard (Host, Origin, token, body cap)."""
    if settings.preset not in PRESETS:
        raise InvalidConfigError(f"unknown preset {settings.preset!r}; choose from {', '.join(PRESETS)}")
    presets, removers_chosen = settled_presets(settings)
    upload_limit = int(settings.max_upload_mb * 1e6)
    device, jobs = Device(settings, presets), Jobs(settings.job_ttl_s)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        device.worker.start()
        yield
        device.close()

    app = FastAPI(title="clearfill", version=__version__, lifespan=lifespan,
                  description="Remove objects from photos: POST an image and a mask, get the filled image back.")
    _install_error_handlers(app)

    static = Path(__file__).with_name("static")
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def editor():
        return FileResponse(static / "index.html")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "waiting": device.admitted}

    @app.get("/v1/presets")
    async def list_presets():
        """The presets a request may pick (what each runs here), and the settings it may change."""
        return {"default": settings.preset,
                "limits": {"max_pixels": settings.max_pixels, "max_upload_mb": settings.max_upload_mb},
                "presets": {name: {"runs": runs(config, settings.device, removers_chosen[name]),
                                   "config": config.to_dict()}
                            for name, config in presets.items()},
                "options": requests.describe(), "request_fields": list(requests.TOP_LEVEL)}

    @app.get("/v1/models")
    async def list_models():
        """The known models and removers, judged without downloading anything."""
        from ..models import REGISTRY, store

        return {
            "models": [{"name": m.name, "kind": m.kind, "size_mb": m.size_mb, "license": m.license,
                        "downloaded": store.is_downloaded(m)} for m in REGISTRY.values()],
            "removers": [{"name": r.name, "summary": r.summary, "usable": r.usable(download=False)[0]}
                         for r in removers.REGISTRY.values()],
        }

    async def read_upload(request: Request, image: UploadFile, mask: UploadFile | None, options: str | None,
                          stages: str = "", mask_only: bool = False) -> Upload:
        unexpected = sorted(set((await request.form()).keys()) - _PARTS)
        if unexpected:
            raise RequestError(422, f"unexpected form part {unexpected[0]!r}; send image, mask and options",
                               "bad_request")
        parsed = requests.parse(options, presets, settings.preset)
        finds = parsed.detect is not None or parsed.select is not None
        if mask_only and not finds:
            raise RequestError(422, "say what to find (options.detect) or select (options.select)", "bad_options")
        if not mask_only and (mask is None) == (not finds):
            raise RequestError(422, "send a mask part, options.detect or options.select: one of them", "bad_request")
        mask_bytes = await _read_part(mask, upload_limit, "mask") if mask is not None else None
        return Upload(await _read_part(image, upload_limit, "image"), mask_bytes, parsed, stages, mask_only)

    @app.post("/v1/remove")
    async def remove_now(request: Request, image: UploadFile = File(...), mask: UploadFile | None = File(None),
                         options: str | None = Form(None), stages: bool = Query(False)):
        """Remove what the mask marks and answer with the image (``?stages=1``: JSON with
        every stage's picture)."""
        upload = await read_upload(request, image, mask, options, "inline" if stages else "")
        device.admit()
        outcome = await device.run(upload)
        return Response(outcome.body, media_type=outcome.media_type, headers=outcome.headers)

    @app.post("/v1/mask")
    async def find_mask_now(request: Request, image: UploadFile = File(...), options: str | None = Form(None)):
        """The mask ``options.detect`` finds on the image, as a PNG (white = remove)."""
        upload = await read_upload(request, image, None, options, mask_only=True)
        device.admit()
        outcome = await device.run(upload)
        return Response(outcome.body, media_type=outcome.media_type, headers=outcome.headers)

    @app.post("/v1/jobs", status_code=202)
    async def start_job(request: Request, image: UploadFile = File(...), mask: UploadFile | None = File(None),
                        options: str | None = Form(None), stages: bool = Query(False)):
        """The same removal as a job: follow ``events`` (server-sent events), fetch ``result``
        (the image). ``?stages=1``: small pictures of every stage are kept too, at ``stages``,
        made without delaying the result; the ``done`` event says what each stage did."""
        upload = await read_upload(request, image, mask, options, "previews" if stages else "")
        device.admit()
        job = jobs.new()
        job.wants_previews = bool(upload.stages)
        await job.add({"type": "queued", "waiting": device.admitted - 1})

        def entered():
            job.entered = True

        async def finish(outcome: Outcome):
            """The result is the job's, and ``done`` says so (once: early or at the end)."""
            if job.output is not None or job.status in FINAL:
                return
            job.output = (outcome.media_type, outcome.body)
            done = {"type": "done", "result": f"/v1/jobs/{job.id}/result", "seed": outcome.seed,
                    "timings": json.loads(outcome.headers["X-Clearfill-Timings"]), "stages": outcome.stages}
            if upload.stages:
                done["pictures"] = f"/v1/jobs/{job.id}/stages"
            await job.add(done)

        def result_ready(outcome: Outcome):  # from the waiting thread, before the previews are made
            asyncio.run_coroutine_threadsafe(finish(outcome), loop)

        async def run_job():
            try:
                outcome = await device.run(upload, job.report, job.cancel, on_enter=entered, on_result=result_ready)
            except asyncio.CancelledError:  # taken out of the queue by DELETE: it never ran
                return
            except RequestError as error:
                if job.status in FINAL:  # cancelled while it waited, or failed making previews: already said
                    return
                kind = "cancelled" if error.code == "cancelled" else "error"
                await job.add({"type": kind, **error.body()})
            except Exception as exc:  # a bug here, not in the removal: logged, and the job says so
                if job.status not in FINAL:
                    await job.add({"type": "error", **internal_error(f"job {job.id}", exc=exc).body()})
            else:
                await finish(outcome)
                job.previews = outcome.previews
            finally:
                job.ended.set()
                jobs.forget_old()  # a result just kept may put the kept bytes over their cap

        loop = asyncio.get_running_loop()

        job.task = loop.create_task(run_job())
        return job.summary()

    def find(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise RequestError(404, f"no job {job_id!r} (finished jobs are kept {settings.job_ttl_s:g} s)",
                               "not_found")
        return job

    @app.get("/v1/jobs/{job_id}")
    async def job_status(job_id: str):
        return find(job_id).summary()

    @app.get("/v1/jobs/{job_id}/events")
    async def job_events(job_id: str):
        return StreamingResponse(find(job_id).stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/v1/jobs/{job_id}/result")
    async def job_result(job_id: str):
        job = find(job_id)
        if job.output is None:
            raise RequestError(409, f"job {job_id} is {job.status}, it has no result", "not_ready")
        return Response(job.output[1], media_type=job.output[0])

    @app.get("/v1/jobs/{job_id}/stages")
    async def job_stages(job_id: str):
        """What each stage did and its picture (at most PREVIEW_SIDE long), for a job started with ?stages=1."""
        job = find(job_id)
        if job.output is None:
            raise RequestError(409, f"job {job_id} is {job.status}, it has no stage pictures", "not_ready")
        if not job.wants_previews:
            raise RequestError(404, f"job {job_id} was started without ?stages=1: it kept no stage pictures",
                               "not_found")
        await job.ended.wait()  # made in the moment after the result
        if job.previews is None:
            raise internal_error(f"job {job_id}'s stage pictures")
        return Response(job.previews, media_type="application/json")

    @app.delete("/v1/jobs/{job_id}", status_code=202)
    async def cancel_job(job_id: str):
        """Cancel: a queued job leaves the queue at once and never runs; a running one
        stops at its next stage, refiner step or SR tile (its worker is stopped if it
        does not within a moment). A finished job answers 409."""
        job = find(job_id)
        if job.status in FINAL:
            raise RequestError(409, f"job {job_id} is {job.status}: there is nothing to cancel", "finished")
        job.cancel.set()
        if not job.entered:
            job.task.cancel()
            await job.add({"type": "cancelled", "error": "the job was cancelled", "code": "cancelled"})
        return job.summary()

    guard = GuardSettings(hosts=settings.hosts, origins=settings.origins, token=settings.token,
                          max_body_bytes=2 * upload_limit + 1_000_000, body_timeout_s=settings.body_timeout_s,
                          upload_timeout_s=settings.upload_timeout_s)
    return Guard(app, guard)


__all__ = ["ServerSettings", "create_app", "runs"]
