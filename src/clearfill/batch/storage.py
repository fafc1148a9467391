"""Reading and writing batch files on local disk or any filesystem pyarrow knows
(s3://, gs://, hdfs://, ...). Local writes go through a temp file and a rename;
object stores make a single PUT visible all at once, which is just as atomic."""

from __future__ import annotations

import os
from pathlib import Path

from .. import io
from ..errors import OutputError


def is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> Path:
    return Path(location[len("file://"):] if location.startswith("file://") else location)


def _remote(location: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(location)  # (filesystem, path inside it)


def read_bytes(location: str) -> bytes:
    if is_local(location):
        return local_path(location).read_bytes()
    filesystem, path = _remote(location)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def write_atomic(location: str, data: bytes) -> None:
    if is_local(location):
        with io.atomic_writer(local_path(location)) as handle:
            handle.write(data)
        return
    filesystem, path = _remote(location)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def exists(location: str) -> bool:
    if is_local(location):
        return local_path(location).is_file()
    from pyarrow import fs

    filesystem, path = _remote(location)
    return filesystem.get_file_info(path).type == fs.FileType.File


def remove_stale_temporaries(location: str) -> None:
    """Temp files a killed run left beside a local output (never the output itself)."""
    if is_local(location):
        target = local_path(location)
        for stale in target.parent.glob(f".{target.name}.*.part"):
            stale.unlink(missing_ok=True)


def open_for_append(path: Path, what: str):
    """``path`` opened to append lines, never through a link (a ledger or report linked
    to an input would write into the input): a link there is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.fdopen(os.open(path, flags, 0o666), "a", buffering=1)
    except OSError as exc:
        if path.is_symlink():
            raise OutputError(f"{what} {path} is a link: clearfill does not write through links; remove it") from None
        raise OutputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
