"""The ``clearfill`` command line. It wraps the library and is the only place that
turns library errors into exit codes: 2 for bad input or options, 3 when some batch
items failed, 1 for anything unexpected, 130 for Ctrl+C."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import traceback
from pathlib import Path

from . import __version__, console, io
from .api import remove
from .config import PRESETS, parse_assignment
from .errors import ClearfillError, InvalidInputError, OutputExistsError
from .sheet import PICTURE_NAMES, SHOWN_ONLY_WHEN_RUN, contact_sheet

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits with the same code and one-line style as our own errors."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(message, EXIT_USAGE))


def _fail(message: str, code: int) -> int:
    console.say("error", message)
    return code


# What to do about a library error, in this command line's own options.
_HINTS = {
    "max_pixels": "raise the limit with --max-pixels if the file is trusted",
    "resize_mask": "pass --resize-mask to scale the mask to the image",
    "device": "choose another with --device",
}


def _message(error: ClearfillError) -> str:
    hint = _HINTS.get(getattr(error, "setting", None) or "")
    return f"{error}; {hint}" if hint else str(error)


def _add_remove(commands) -> None:
    p = commands.add_parser("remove", help="remove what a mask marks from one image")
    p.add_argument("image", type=Path, help="input image (JPEG, PNG, WebP, TIFF, BMP)")
    p.add_argument("--mask", "-m", type=Path, help="mask image: white (255) = remove")
    p.add_argument("--detect", choices=["text"], help="find what to remove instead of a mask: text (captions, "
                                                      "credits, date stamps, watermarks)")
    p.add_argument("--output", "-o", type=Path, required=True, help="output file; its extension picks the format")
    _add_pipeline_options(p)
    p.add_argument("--candidates", type=int, help="refine N times (seeds seed..seed+N-1), keep the one the guard "
                                                  "finds closest to the removed fill")
    p.add_argument("--save-stages", type=Path, metavar="DIR", help="write each stage's picture and a contact sheet")
    p.add_argument("--seed", type=int, help="random seed (default: the reference workflow's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--resize-mask", action="store_true", help="scale a mask of another size to the image")
    p.add_argument("--allow-empty-mask", action="store_true",
                   help="write the image unchanged when the mask marks nothing (default: an error)")
    p.add_argument("--quality", type=int, default=io.JPEG_QUALITY, help="JPEG/WebP quality (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=io.DEFAULT_MAX_PIXELS,
                   help="refuse larger images before decoding them (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each stage's time and what it did")
    _add_comfyui_dir(p)
    p.set_defaults(handler=_run_remove)


def _add_pipeline_options(p) -> None:
    """The preset and the models: the same flags for remove, batch and serve."""
    p.add_argument("--preset", default="reference", choices=sorted(PRESETS), help="parameter set (default: reference)")
    p.add_argument("--remover", help="auto (default), lama, mat, exemplar, ns, telea, or a path to an inpainting "
                                     "model file (run by the lama remover)")
    p.add_argument("--upscaler", help="SR model (registry name or file) before the refiner; an error if unusable")
    p.add_argument("--refiner", help="refiner: registry name, Hugging Face repo id, diffusers folder or FLUX Fill "
                                     ".safetensors; runs even on a CPU (slowly), an error if unusable")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="STAGE.PARAM=VALUE",
                   help="override one parameter, e.g. --set crop.padding=32 (repeatable)")


def _pipeline_overrides(args) -> dict:
    """--set, --remover, --upscaler and --refiner as config overrides. A model the user
    names is used even on a CPU, and its absence is an error, not a fallback."""
    overrides = dict(parse_assignment(text) for text in args.assignments)
    if args.remover and Path(args.remover).expanduser().is_file():
        overrides.update({"remove.method": "lama", "remove.model": args.remover})
    elif args.remover:
        overrides["remove.method"] = args.remover
    if args.upscaler:
        overrides.update({"resize.upscaler": args.upscaler, "resize.upscaler_on_cpu": True,
                          "resize.upscaler_fallback": False})
    if args.refiner:
        overrides.update({"refine.model": args.refiner, "refine.on_cpu": True, "refine.fallback": False})
    return overrides


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file, after links (a loop of links names none)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _refuse_input(path: Path, inputs: dict[str, Path], what: str) -> None:
    for name, source in inputs.items():
        if _same_file(path, source):
            raise OutputExistsError(f"{what} {path} is the {name} file; clearfill never replaces its input: "
                                    "write it somewhere else")


# The names --save-stages writes (sheet.stage file names: "3-crop.png"), whatever stages ran.
_STAGE_FILE = re.compile(r"\d+-[\w-]+\.png|sheet\.png")


def _check_destinations(args) -> None:
    """Everything about where the results go, checked before the work starts."""
    if (args.mask is None) == (args.detect is None):
        raise InvalidInputError("give --mask (what to remove) or --detect text (find it), one of them")
    inputs = {name: source for name, source in (("image", args.image), ("mask", args.mask)) if source is not None}
    _refuse_input(args.output, inputs, "the output")
    io.output_format(args.output)  # an unknown extension
    io.check_destination(args.output)
    if args.save_stages is not None:
        io.check_destination(args.save_stages, folder=True)
        for name, source in inputs.items():
            if _STAGE_FILE.fullmatch(source.name) and _same_file(source.parent, args.save_stages):
                raise OutputExistsError(f"--save-stages {args.save_stages} would overwrite the {name} file "
                                        f"{source}: write the stages to another folder")
    if not 1 <= args.quality <= 100:
        raise InvalidInputError(f"--quality must be 1..100, got {args.quality}")


def _run_remove(args) -> int:
    _check_destinations(args)
    overrides = _pipeline_overrides(args)
    if args.candidates:
        overrides["refine.candidates"] = args.candidates
    result = remove(
        args.image, args.mask, args.preset, detect=args.detect, seed=args.seed, device=args.device,
        keep_stages=args.save_stages is not None, resize_mask=args.resize_mask,
        max_pixels=args.max_pixels, **overrides,
    )
    if not result.hole.any() and not args.allow_empty_mask:
        what = f"mask {args.mask} marks" if args.mask else f"--detect {args.detect} found"
        raise InvalidInputError(f"{what} nothing to remove (pass --allow-empty-mask to copy the image)")
    result.save(args.output, quality=args.quality)
    if args.save_stages is not None:
        inputs = {name: source for name, source in (("image", args.image), ("mask", args.mask)) if source is not None}
        _save_stages(result, args.save_stages, inputs)
    if args.verbose:
        for line in result.summary():
            print(line, file=sys.stderr)
        for score in result.guard:
            chosen = " (kept)" if score.seed == result.guard_choice else ""
            print(f"guard seed {score.seed}: total {score.total:.4f} = structure {score.structure:.4f} + colour "
                  f"{score.colour:.4f} + seam {score.seam:.4f}{chosen}", file=sys.stderr)
    notes = {record.name: record.note for record in result.stages}
    print(f"wrote {args.output}: removed with {notes.get('remove', '-')}"
          + (f"; refine skipped: {result.skipped['refine']}" if "refine" in result.skipped else ""),
          file=sys.stderr)
    return EXIT_OK


def _save_stages(result, folder: Path, inputs: dict[str, Path]) -> None:
    """Each stage's picture and the sheet; a name that resolves to an input (a link to
    it) is refused before anything is written."""
    order = [record.name for record in result.stages if record.ran or record.name not in SHOWN_ONLY_WHEN_RUN]
    pictures = {folder / f"{index}-{PICTURE_NAMES.get(name, name)}.png": result.stage_pictures[name]
                for index, name in enumerate(order, start=1) if name in result.stage_pictures}
    pictures[folder / "sheet.png"] = contact_sheet(order, result.stage_pictures,
                                                   {r.name: r.note for r in result.stages})
    for path in pictures:
        _refuse_input(path, inputs, "the stage picture")
    folder.mkdir(parents=True, exist_ok=True)
    for path, picture in pictures.items():
        io.save_picture(path, picture)


def _add_mask(commands) -> None:
    p = commands.add_parser("mask", help="find a mask (text, captions, stamps, watermarks) or select an object "
                                         "(box, lasso, clicks) and write it")
    p.add_argument("image", type=Path)
    p.add_argument("--detect", choices=["text"], help="what to find")
    p.add_argument("--box", type=_numbers(4, int), metavar="X,Y,W,H", help="select the object in this box")
    p.add_argument("--lasso", type=Path, metavar="FILE.json", help="select the object inside a loose polygon: "
                                                                   "a JSON list of [x, y]")
    p.add_argument("--point", type=_point, action="append", default=[], metavar="X,Y[,neg]",
                   help="a click on the object (,neg: on what is not it); repeatable")
    p.add_argument("--method", choices=["auto", "grabcut", "sam"], default="auto",
                   help="how a selection is refined: SAM 2.1 (weights needed), GrabCut (none), or auto: SAM when "
                        "its weights are here")
    p.add_argument("--sam-model", default="sam2.1-hiera-tiny", help="SAM 2.1 weights: registry name, folder or repo id")
    p.add_argument("--output", "-o", type=Path, required=True, help="mask file to write (.png: white = remove)")
    p.add_argument("--max-pixels", type=int, default=io.DEFAULT_MAX_PIXELS)
    p.set_defaults(handler=_run_mask)


def _run_mask(args) -> int:
    from PIL import Image

    from .detect import find_mask, select

    _refuse_input(args.output, {"image": args.image}, "the output")
    if io.output_format(args.output) not in ("PNG", "TIFF", "BMP"):
        raise InvalidInputError("write the mask losslessly: .png, .tif or .bmp")
    io.check_destination(args.output)
    selecting = args.box is not None or args.lasso is not None or args.point
    if selecting == (args.detect is not None):
        raise InvalidInputError("give --detect text, or a selection (--box, --lasso, --point), one of them")
    if args.detect:
        found, what = find_mask(args.image, args.detect, max_pixels=args.max_pixels), args.detect
    else:
        lasso = _read_lasso(args.lasso) if args.lasso else None
        found = select(args.image, box=args.box, lasso=lasso, points=args.point, method=args.method,
                       model=args.sam_model, max_pixels=args.max_pixels)
        what = "the selection"
    mask = Image.fromarray((found * 255).astype("uint8"), "L")
    with io.atomic_writer(args.output) as handle:
        mask.save(handle, format=io.output_format(args.output))
    print(f"wrote {args.output}: {what} covers {found.mean():.2%} of the image", file=sys.stderr)
    return EXIT_OK


def _numbers(count: int, kind=float):
    def parse(text: str):
        parts = text.split(",")
        try:
            if len(parts) != count:
                raise ValueError
            return tuple(kind(part) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated numbers, got {text!r}") from None

    return parse


def _point(text: str) -> tuple[float, float, bool]:
    parts = text.split(",")
    negative = len(parts) == 3 and parts[2].strip().lower() in ("neg", "-", "no", "0", "false")
    if len(parts) == 3 and not negative and parts[2].strip().lower() not in ("pos", "+", "yes", "1", "true"):
        raise argparse.ArgumentTypeError(f"a point is X,Y or X,Y,neg; got {text!r}")
    x, y = _numbers(2)(",".join(parts[:2]))
    return x, y, not negative


def _read_lasso(path: Path) -> list:
    try:
        return json.loads(io.regular_file(path, "the lasso").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read the lasso {path}: {exc}") from None


def _add_batch(commands) -> None:
    p = commands.add_parser("batch", help="remove objects from many images (folders, manifests; local or Ray)")
    _add_comfyui_dir(p)
    p.add_argument("input", help="folder of images, or a manifest (.csv/.jsonl with image, mask, output)")
    p.add_argument("--masks", help="folder of masks matched by name, or one mask file for every image")
    p.add_argument("--detect", choices=["text"], help="find what to remove on each image instead of masks")
    p.add_argument("--output", "-o", help="output folder (keeps the input's relative structure)")
    p.add_argument("--format", help="output format extension for every item (default: the input's)")
    _add_pipeline_options(p)
    p.add_argument("--workers", type=int, default=1, help="processes (local) or actors (ray)")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--ray-address", help="join this Ray cluster ('auto' for the local one); default: start one")
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--resume", action="store_true", help="skip items whose output exists")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs this batch did not write (never an input)")
    p.add_argument("--report", type=Path, help="append one JSON line per item here")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--resize-mask", action="store_true")
    p.add_argument("--max-pixels", type=int, default=io.DEFAULT_MAX_PIXELS)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=_run_batch)


def _run_batch(args) -> int:
    from . import batch

    source = Path(args.input)
    output = Path(args.output) if args.output else None
    if source.is_file():
        plan = batch.plan_manifest(source, output, args.format)
    elif source.is_dir():
        if bool(args.masks) == bool(args.detect) or output is None:
            raise InvalidInputError("a folder input needs --output and either --masks or --detect")
        if args.detect:
            plan = batch.plan_detect(source, output, args.format)
        else:
            plan = batch.plan_folder(source, Path(args.masks), output, args.format)
    else:
        raise InvalidInputError(f"input not found: {source}")
    settings = batch.Settings(
        preset=args.preset, overrides=_pipeline_overrides(args), seed=args.seed,
        device=args.device, resize_mask=args.resize_mask, max_pixels=args.max_pixels, detect=args.detect)
    summary = batch.run_batch(plan, settings, engine=args.engine, workers=args.workers, resume=args.resume,
                              overwrite=args.overwrite, report=args.report, progress=not args.no_progress,
                              ray_address=args.ray_address, gpus_per_worker=args.gpus_per_worker)
    print(f"{summary.ok} done, {summary.skipped} already done, {summary.errors} failed"
          + (f", {len(plan.masks_without_image)} masks without an image" if plan.masks_without_image else "")
          + ("; interrupted" if summary.interrupted else ""), file=sys.stderr)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.all_ok else EXIT_SOME_FAILED


def _add_serve(commands) -> None:
    p = commands.add_parser("serve", help="run the HTTP API and the editor (OpenAPI docs at /docs)")
    _add_comfyui_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8765)
    _add_pipeline_options(p)
    p.add_argument("--token", default=os.environ.get("CLEARFILL_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every API call (default: $CLEARFILL_TOKEN)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                   help="another web origin allowed to call the API, e.g. https://app.example (repeatable)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name clients reach this server by (repeatable; loopback names always work)")
    p.add_argument("--max-pixels", type=int, default=40_000_000)
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="per image or mask")
    p.add_argument("--queue-size", type=int, default=8, help="removals that may wait for the device; more get 503")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds a request's headers may take")
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds a request body may stall")
    p.add_argument("--upload-timeout", type=float, default=300.0, help="seconds a whole request body may take")
    p.add_argument("--max-connections", type=int, default=64,
                   help="open connections at once; more are answered 503 (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.set_defaults(handler=_run_serve)


def _run_serve(args) -> int:
    try:
        import uvicorn

        from .server import ServerSettings, create_app, runs
        from .server.guard import hosts_for, is_loopback
        from .server.protocol import with_header_timeout
    except ImportError:
        raise InvalidInputError("the server needs its extra: pip install 'clearfill[server]'") from None
    settings = ServerSettings(
        preset=args.preset, overrides=_pipeline_overrides(args), max_pixels=args.max_pixels,
        max_upload_mb=args.max_upload_mb, queue_size=args.queue_size, device=args.device, token=args.token,
        hosts=hosts_for(args.host, tuple(args.allow_host)), origins=tuple(o.rstrip("/") for o in args.allow_origin),
        body_timeout_s=args.body_timeout, upload_timeout_s=args.upload_timeout)
    app = create_app(settings)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else shown_host}:{args.port}/"
    print(f"clearfill serve: {url}" + (f"#token={args.token}" if args.token else "")
          + f"  (the editor; API docs at {url}docs)", file=sys.stderr)
    device = "cpu"
    with contextlib.suppress(Exception):
        from .models.device import resolve_device

        device = resolve_device(args.device)
    for name, config in settings.presets().items():
        plan = runs(config, device)
        default = " (default)" if name == args.preset else ""
        print(f"  preset {name}{default}: remove {plan['remove']}; upscale {plan['upscale']}; refine {plan['refine']}",
              file=sys.stderr)
    if not is_loopback(args.host) and not args.token:
        console.say("warning", f"listening on {args.host} without --token: anyone who can reach port {args.port} "
                               "can use this server")
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            http=with_header_timeout(args.header_timeout), timeout_keep_alive=5,
                            limit_concurrency=args.max_connections)
    with _exits_on_sigterm():
        uvicorn.Server(config).run()
    return EXIT_OK


@contextlib.contextmanager
def _exits_on_sigterm():
    """uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    handler it found. Under the default handler that kills the process before Python's
    exit handlers run, so multiprocessing never unlinks the semaphores a worker queue's
    feeder thread still holds ("leaked semaphore objects" at exit). Found here, the signal
    exits the usual way instead, with the conventional status 128 + 15."""
    def exit_now(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _add_comfyui_dir(parser) -> None:
    parser.add_argument("--comfyui-dir", type=Path, metavar="DIR",
                        help="a ComfyUI folder whose models to use (FLUX Fill, clip_l, t5xxl, ae, upscale models, "
                             "big-lama); default: $CLEARFILL_COMFYUI_DIR")


def _add_models(commands) -> None:
    p = commands.add_parser("models", help="list, download and verify model weights")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    listing = verbs.add_parser("list", help="every known model: kind, size, licence, downloaded? and a ComfyUI "
                                            "install's files")
    _add_comfyui_dir(listing)
    listing.set_defaults(handler=_models_list)
    download = verbs.add_parser("download", help="download a model into the cache (resumes, verifies)")
    download.add_argument("name")
    download.add_argument("--force", action="store_true", help="download again even if present")
    download.set_defaults(handler=_models_download)
    verify = verbs.add_parser("verify", help="check downloaded models against their published checksums")
    verify.add_argument("name", nargs="?")
    verify.set_defaults(handler=_models_verify)
    path = verbs.add_parser("path", help="print where a model's file is (or would be) cached")
    path.add_argument("name")
    path.set_defaults(handler=_models_path)


def _models_list(args) -> int:
    from .models import REGISTRY, comfyui, store

    print(f"{'name':<28} {'kind':<9} {'size':>8}  {'downloaded':<10}  licence")
    for model in REGISTRY.values():
        size = f"{model.size_mb:,.0f} MB" if model.size_mb else "?"
        print(f"{model.name:<28} {model.kind:<9} {size:>8}  {'yes' if store.is_downloaded(model) else 'no':<10}  "
              f"{model.license}")
    print(f"cache: {store.cache_dir()}" + ("  (offline mode)" if store.offline() else ""))
    install = comfyui.configured()
    if install is not None:
        found = install.found()
        print(f"ComfyUI models: {install.folder}" + ("" if found else " (none of the reference workflow's files)"))
        for role, path in found:
            print(f"  {role:<24} {path.relative_to(install.folder)}")
    return EXIT_OK


def _models_download(args) -> int:
    from .models import store

    print(store.download(args.name, force=args.force))
    return EXIT_OK


def _models_verify(args) -> int:
    from .models import REGISTRY, entry, store

    names = [args.name] if args.name else [m.name for m in REGISTRY.values() if store.is_downloaded(m)]
    if not names:
        print("no models downloaded")
    for name in names:
        print(store.verify(entry(name)))
    return EXIT_OK


def _models_path(args) -> int:
    from .models import entry, store

    print(store.path_of(entry(args.name)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="clearfill", description="Remove objects from photos and fill the hole naturally.")
    parser.add_argument("--version", action="version", version=f"clearfill {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_remove(commands)
    _add_mask(commands)
    _add_batch(commands)
    _add_serve(commands)
    _add_models(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "comfyui_dir", None) is not None:
        from .models.comfyui import ENVIRONMENT_VARIABLE

        os.environ[ENVIRONMENT_VARIABLE] = str(args.comfyui_dir)
    try:
        with console.routed_warnings(verbose=getattr(args, "verbose", False)):
            return args.handler(args)
    except ClearfillError as exc:
        return _fail(_message(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug, not bad input: one line, the traceback only on request
        if getattr(args, "verbose", False):
            traceback.print_exc()
        return _fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)", EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
