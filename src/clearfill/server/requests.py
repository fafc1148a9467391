"""What a client may ask for: the request's options, checked against an allow-list.

Everything a request sends is untrusted. It may pick one of the server's presets
and change the per-call settings below, each within bounds that keep one request
from taking the machine (a 100 MP working size, 1000 refiner steps). Models,
devices, paths and anything else that loads or reaches outside the request are
the server's own settings (``clearfill serve --remover/--upscaler/--refiner/--set``):
a request naming one is refused with 403.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import imaging
from ..config import SECTIONS, PipelineConfig


class RequestError(Exception):
    """An answer to the client: HTTP status, a one-line message and a stable code."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}  # more fields for the JSON body (a 500's request id)

    def body(self) -> dict:
        return {"error": self.message, "code": self.code, **self.extra}


@dataclass(frozen=True)
class Bound:
    """One per-request setting: its JSON type and the values allowed."""

    kind: type  # int, float, str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 0

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else self.kind):
            raise RequestError(422, f"{name} must be {'a number' if self.kind is float else self.kind.__name__}, "
                                    f"got {json.dumps(value)[:40]}", "bad_options")
        if self.choices and value not in self.choices:
            raise RequestError(422, f"{name} must be one of {', '.join(self.choices)}", "bad_options")
        if self.max_length and len(value) > self.max_length:
            raise RequestError(422, f"{name} is longer than {self.max_length} characters", "bad_options")
        if self.low is not None and not self.low <= value <= self.high:
            raise RequestError(422, f"{name} must be between {self.low:g} and {self.high:g}, got {value:g}",
                               "bad_options")
        return float(value) if self.kind is float else value

    def describe(self) -> dict:
        described: dict[str, Any] = {"type": {int: "integer", float: "number", str: "string"}[self.kind]}
        if self.low is not None:
            described.update(min=self.low, max=self.high)
        if self.choices:
            described["choices"] = list(self.choices)
        if self.max_length:
            described["max_length"] = self.max_length
        return described


_RESAMPLERS = tuple(sorted(imaging.RESAMPLERS))
ALLOWED: dict[str, Bound] = {
    "mask.threshold": Bound(float, 0.01, 1.0),
    "mask.grow_pixels": Bound(float, -32, 64),
    "mask.blur_radius": Bound(float, 0, 64),
    "crop.expand_pixels": Bound(int, 0, 512),
    "crop.expand_factor": Bound(float, 1.0, 3.0),
    "crop.padding": Bound(int, 8, 256),
    "crop.mask_blur_pixels": Bound(float, 0, 64),
    "crop.blend_pixels": Bound(float, 0, 128),
    "resize.target_pixels": Bound(int, 64 * 64, 4_000_000),
    "resize.method": Bound(str, choices=_RESAMPLERS),
    "refine.strength": Bound(float, 0.05, 1.0),
    "refine.steps": Bound(int, 1, 50),
    "refine.guidance": Bound(float, 0, 50),
    "refine.candidates": Bound(int, 1, 4),
    "refine.prompt": Bound(str, max_length=300),
    "stitch.method": Bound(str, choices=_RESAMPLERS),
}
TOP_LEVEL = ("preset", "overrides", "seed", "candidates", "resize_mask", "detect", "select")
MOST_LASSO_POINTS, MOST_CLICKS = 10_000, 100
MOST_OPTIONS_BYTES = 1_000_000  # a lasso of 10,000 points is about 250 kB of JSON
MOST_OPTIONS_DEPTH = 6  # {"select": {"lasso": [[x, y], ...]}} is 3 deep
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
DETECT = ("text",)
SEED_RANGE = (0, 2 ** 63 - 1)


@dataclass(frozen=True)
class Request:
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    resize_mask: bool = False
    detect: str | None = None  # find the mask on the image instead of reading one
    select: dict | None = None  # or select an object: box, lasso, points


def _flatten(overrides: dict) -> dict[str, Any]:
    """``{"crop": {"padding": 32}}`` and ``{"crop.padding": 32}`` alike, as dotted names."""
    flat = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise RequestError(422, "override names must be strings", "bad_options")
        if "." not in key and isinstance(value, dict):
            flat.update({f"{key}.{param}": inner for param, inner in value.items()})
        else:
            flat[key] = value
    return flat


def _checked_override(name: str, value: Any) -> Any:
    if name in ALLOWED:
        return ALLOWED[name].check(name, value)
    section, _, param = name.partition(".")
    if section in SECTIONS and param and (section == "remove" or param in _fields_of(section)):
        raise RequestError(403, f"{name} is set by the server, not by a request (allowed: {', '.join(ALLOWED)})",
                           "forbidden_option")
    raise RequestError(422, f"unknown option {name!r}; a request may set {', '.join(ALLOWED)}", "bad_options")


def _fields_of(section: str) -> set[str]:
    from dataclasses import fields

    return {f.name for f in fields(getattr(PipelineConfig(), section))}


def parse(text: str | None, presets: dict[str, PipelineConfig], default_preset: str) -> Request:
    """The request's ``options`` form field (JSON) -> a checked Request."""
    _check_json_size(text or "")
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise RequestError(422, f"options is not valid JSON: {exc.msg}", "bad_options") from None
    if not isinstance(options, dict):
        raise RequestError(422, "options must be a JSON object", "bad_options")
    unknown = sorted(set(options) - set(TOP_LEVEL))
    if unknown:
        raise RequestError(422, f"unknown option {unknown[0]!r}; known: {', '.join(TOP_LEVEL)}", "bad_options")
    preset = options.get("preset", default_preset)
    if not isinstance(preset, str) or preset not in presets:
        raise RequestError(422, f"preset must be one of {', '.join(presets)}", "bad_options")
    overrides = options.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise RequestError(422, "overrides must be an object of stage.param: value", "bad_options")
    overrides = _flatten(overrides)
    if options.get("candidates") is not None:
        overrides["refine.candidates"] = options["candidates"]
    checked = {name: _checked_override(name, value) for name, value in overrides.items()}
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]):
        raise RequestError(422, "seed must be an integer from 0 to 2**63 - 1", "bad_options")
    resize_mask = options.get("resize_mask", False)
    if not isinstance(resize_mask, bool):
        raise RequestError(422, "resize_mask must be true or false", "bad_options")
    detect = options.get("detect")
    if detect is not None and detect not in DETECT:
        raise RequestError(422, f"detect must be one of {', '.join(DETECT)}", "bad_options")
    select = options.get("select")
    if select is not None:
        _check_selection(select)
    if detect is not None and select is not None:
        raise RequestError(422, "detect and select are alternatives: send one", "bad_options")
    return Request(preset, checked, seed, resize_mask, detect, select)


def _check_json_size(text: str) -> None:
    """Refuse options too long or nested too deep before parsing them (the parser recurses
    once per level: a deep enough document exhausts the stack)."""
    if len(text) > MOST_OPTIONS_BYTES:
        raise RequestError(422, f"options is longer than {MOST_OPTIONS_BYTES // 1000} kB", "bad_options")
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MOST_OPTIONS_DEPTH:
            raise RequestError(422, f"options is nested deeper than {MOST_OPTIONS_DEPTH} levels", "bad_options")


def _check_selection(select: Any) -> None:
    """Shape and size only; the library checks the values against the image."""
    if not isinstance(select, dict) or not set(select) <= {"box", "lasso", "points"} or not select:
        raise RequestError(422, "select must be an object with box, lasso and/or points", "bad_options")
    lasso, points = select.get("lasso") or [], select.get("points") or []
    if not isinstance(lasso, list) or len(lasso) > MOST_LASSO_POINTS:
        raise RequestError(422, f"select.lasso must be a list of at most {MOST_LASSO_POINTS} [x, y]", "bad_options")
    if not isinstance(points, list) or len(points) > MOST_CLICKS:
        raise RequestError(422, f"select.points must be a list of at most {MOST_CLICKS} [x, y, positive]",
                           "bad_options")


def describe() -> dict:
    """The allow-list, as ``/v1/presets`` shows it to clients."""
    return {name: bound.describe() for name, bound in ALLOWED.items()}
