"""The model cache: where files live, downloading them (resumable, verified,
atomic), and checking them later.

Nothing here touches the network when ``CLEARFILL_OFFLINE`` or ``HF_HUB_OFFLINE``
is set. A download goes to ``NAME.part`` beside its final place, resumes from
there, and is renamed into place only after its checksum matched, so the final
path never holds half a file.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import ChecksumError, ModelNotAvailableError
from .registry import ModelEntry
from .registry import entry as registry_entry

_CHUNK = 1 << 20
_TIMEOUT_S = 20


def cache_dir() -> Path:
    """``$CLEARFILL_HOME/models``, else the platform's user cache folder."""
    home = os.environ.get("CLEARFILL_HOME")
    if home:
        return Path(home).expanduser() / "models"
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "clearfill" / "models"


_NO_DOWNLOADS = contextvars.ContextVar("clearfill_no_downloads", default=False)


@contextlib.contextmanager
def no_downloads():
    """Inside, nothing is downloaded (a server request, which uses what the server
    fetched when it started); registry files and hub models must be here already."""
    token = _NO_DOWNLOADS.set(True)
    try:
        yield
    finally:
        _NO_DOWNLOADS.reset(token)


def downloads_blocked() -> bool:
    return _NO_DOWNLOADS.get()


def offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
               for var in ("CLEARFILL_OFFLINE", "HF_HUB_OFFLINE"))


def path_of(model: ModelEntry) -> Path:
    return cache_dir() / model.filename


def is_downloaded(model: ModelEntry) -> bool:
    return path_of(model).is_file()


# ----------------------------------------------------------------------------- checksums


def file_digests(path: Path) -> dict[str, str]:
    """SHA-256 and MD5 of the file's bytes, read now: nothing is remembered between calls,
    since a record kept beside a file could be written by whoever wrote the file."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            sha256.update(block)
            md5.update(block)
    return {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def bytes_digests(data: bytes) -> dict[str, str]:
    """SHA-256 and MD5 of bytes already in memory (the very bytes about to be loaded)."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


def matches(model: ModelEntry, found: dict[str, str]) -> bool:
    """Whether digests match the entry's published checksum (False when it has none)."""
    if model.sha256:
        return found["sha256"] == model.sha256.lower()
    if model.md5:
        return found["md5"] == model.md5.lower()
    return False


def verify(model: ModelEntry, path: Path | None = None) -> str:
    """Check a file against the entry's published checksum; returns a one-line verdict,
    raises ChecksumError on a mismatch."""
    path = path or path_of(model)
    if not path.is_file():
        raise ModelNotAvailableError(f"{model.name} is not downloaded (expected at {path})")
    found = file_digests(path)
    if not model.has_published_checksum:
        return f"{model.name}: no published checksum; sha256 {found['sha256']}"
    if not matches(model, found):
        kind, expected = ("sha256", model.sha256) if model.sha256 else ("md5", model.md5)
        raise ChecksumError(
            f"{path} does not match {model.name}'s published {kind} (expected {expected}, got {found[kind]}); "
            f"delete it and run `clearfill models download {model.name}`"
        )
    return f"{model.name}: ok ({'sha256' if model.sha256 else 'md5'} matches)"


# ----------------------------------------------------------------------------- downloading


def _fetch(url: str, part: Path, label: str) -> None:
    """Append ``url``'s bytes to ``part``, resuming from its current size."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "clearfill"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        resumed = start and response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (start if resumed else 0)) if length else None
        with tqdm(total=total, initial=start if resumed else 0, unit="B", unit_scale=True, desc=label,
                  file=sys.stderr, disable=not sys.stderr.isatty()) as progress, \
                open(part, "ab" if resumed else "wb") as handle:
            for block in iter(lambda: response.read(_CHUNK), b""):
                handle.write(block)
                progress.update(len(block))


def download(name: str, *, force: bool = False) -> Path:
    """Download a registry model into the cache (resuming a partial download) and verify it."""
    model = registry_entry(name)
    target = path_of(model)
    if target.is_file() and not force:
        return target
    if any(url.startswith("hf://") for url in model.download_urls()):
        raise ModelNotAvailableError(
            f"{model.name} is a Hugging Face repository, fetched by the stage that uses it (needs a token "
            "for gated models); nothing to download here"
        )
    if downloads_blocked():
        raise ModelNotAvailableError(
            f"{model.name} is not downloaded, and a request never downloads (the server fetches models when it "
            f"starts): run `clearfill models download {model.name}` and restart it")
    if offline():
        raise ModelNotAvailableError(
            f"{model.name} is not downloaded and offline mode is on (CLEARFILL_OFFLINE / HF_HUB_OFFLINE); "
            f"fetch {model.urls[0]} elsewhere and place it at {target}, or pass a local file path"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    errors = []
    for url in model.download_urls():
        try:
            _fetch(url, part, model.name)
            break
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    else:
        raise ModelNotAvailableError(
            f"could not download {model.name} ({'; '.join(errors)}); run `clearfill models download "
            f"{model.name}` again to resume, or set {model.url_variable} to a mirror"
        )
    found = file_digests(part)
    if model.has_published_checksum and not matches(model, found):
        part.unlink(missing_ok=True)
        kind = "sha256" if model.sha256 else "md5"
        raise ChecksumError(
            f"downloaded {model.name} does not match its published {kind} (got {found[kind]}); "
            f"the partial file was removed: run `clearfill models download {model.name}` to try again"
        )
    os.replace(part, target)
    return target
