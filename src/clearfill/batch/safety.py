"""Refusing, before any work starts, a batch that would lose or misplace files.

An output may not be (after symlinks) any item's image or mask, the manifest or
the report; it must lie inside the plan's output root; no two items may share
one; and an existing file is replaced only when it is this batch's own earlier
output for the same item, as the root's ledger records, or when the caller
allows overwriting. ``--resume`` keeps existing outputs instead.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InvalidInputError, OutputError, OutputExistsError
from . import storage
from .plan import Item, Plan

LEDGER_NAME = ".clearfill-batch.jsonl"  # in the output root: which item wrote which output
MOST_NAME_BYTES = 255  # a file name's longest on ext4, APFS, NTFS and most others
_EXAMPLES = 3


@dataclass(frozen=True)
class _Place:
    """A location in a comparable form: a resolved local path, or a normalised URI."""

    key: str
    local: Path | None

    @classmethod
    def of(cls, location: str) -> _Place:
        if storage.is_local(location):
            path = storage.local_path(location).expanduser().resolve()
            return cls(str(path), path)
        parts = urlsplit(location)
        return cls(f"{parts.scheme}://{parts.netloc}{posixpath.normpath('/' + parts.path)}", None)

    def inside(self, root: _Place) -> bool:
        if (self.local is None) != (root.local is None):
            return False
        if self.local is not None:
            return self.local != root.local and self.local.is_relative_to(root.local)
        return self.key.startswith(root.key.rstrip("/") + "/")


def _listing(pairs: list[str], total: int) -> str:
    shown = "; ".join(pairs[:_EXAMPLES])
    return shown + (f" (and {total - _EXAMPLES} more)" if total > _EXAMPLES else "")


def _refuse_if(problems: list[str], message: str, error=InvalidInputError) -> None:
    if problems:
        raise error(f"{message}: {_listing(problems, len(problems))}")


def check_outputs(plan: Plan, *, overwrite: bool = False, resume: bool = False,
                  report: str | Path | None = None) -> None:
    """Raise InvalidInputError (or OutputExistsError) naming the first offending
    items if running ``plan`` could overwrite an input, write outside the output
    root, write one output twice, or replace a file it does not own."""
    protected = {}
    for item in plan.items:
        protected.setdefault(_Place.of(item.image).key, f"image {item.image}")
        if item.mask:  # empty when the mask is found on the image (detect)
            protected.setdefault(_Place.of(item.mask).key, f"mask {item.mask}")
    for source in plan.sources:
        protected.setdefault(_Place.of(source).key, f"manifest {source}")
    outputs = {item.output: _Place.of(item.output) for item in plan.items}

    _refuse_if([f"{item.output} is the {protected[outputs[item.output].key]}" for item in plan.items
                if outputs[item.output].key in protected],
               "the batch would overwrite its own input; write the outputs to another folder")
    if report is not None:
        place = _Place.of(str(report))
        clash = protected.get(place.key) or next((f"output {o}" for o, p in outputs.items() if p == place), None)
        _refuse_if([f"{report} is the {clash}"] if clash else [], "the report must be a file of its own")

    if plan.output_root is not None:
        root = _Place.of(plan.output_root)
        _refuse_if([output for output, place in outputs.items() if not place.inside(root)],
                   f"outputs must lie inside the output folder {plan.output_root}")

    _refuse_if([f"{output} has a name over {MOST_NAME_BYTES} bytes" for output, place in outputs.items()
                if place.local is not None and any(len(os.fsencode(part)) > MOST_NAME_BYTES
                                                   for part in place.local.parts)],
               "outputs must have names the file system can hold")
    _refuse_if([f"{output} is a folder" for output, place in outputs.items()
                if place.local is not None and place.local.is_dir()], "outputs must be files")

    first_claim: dict[str, Item] = {}
    shared = []
    for item in plan.items:
        other = first_claim.setdefault(outputs[item.output].key, item)
        if other is not item:
            shared.append(f"{other.image} and {item.image} -> {item.output}")
    _refuse_if(shared, "two items would be written to one output (use distinct names or another --format)")

    if not (overwrite or resume):
        owned = Ledger(plan.output_root)
        _refuse_if([item.output for item in plan.items if storage.exists(item.output) and not owned.wrote(item)],
                   "outputs exist that this batch did not write; pass --overwrite to replace them or --resume "
                   "to keep them", OutputExistsError)


class Ledger:
    """The output root's record of which image and mask each output was made from,
    so a batch run again may replace its own results but nothing else. Only local
    roots keep one; elsewhere every existing output counts as not ours."""

    def __init__(self, root: str | None):
        self.path = self._root = None
        if root is not None and storage.is_local(root):
            self.path = storage.local_path(root) / LEDGER_NAME
            self._root = _Place.of(root).local
        self._entries = self._read()

    def _read(self) -> dict[str, tuple[str, str]]:
        entries = {}
        if self.path is not None and self.path.is_symlink():
            raise OutputError(f"the batch ledger {self.path} is a link: clearfill does not write through links; "
                              "remove it")
        if self.path is None or not self.path.is_file():
            return entries
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                entries[record["output"]] = (record["image"], record["mask"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: that output is simply not claimed
        return entries

    def _key(self, item: Item) -> tuple[str, tuple[str, str]]:
        """The output relative to the root (the ledger moves with its folder); the
        sources as resolved paths."""
        output = _Place.of(item.output)
        if self._root is not None and output.local is not None and output.inside(_Place(str(self._root), self._root)):
            output_key = output.local.relative_to(self._root).as_posix()
        else:
            output_key = output.key
        return output_key, (_Place.of(item.image).key, _Place.of(item.mask).key if item.mask else "")

    def wrote(self, item: Item) -> bool:
        output, sources = self._key(item)
        return self._entries.get(output) == sources

    def claim(self, items: list[Item]) -> None:
        """Record ``items`` before they are processed, so a killed run's outputs are
        still recognised as this batch's own."""
        if self.path is None:
            return
        new = [self._key(item) for item in items if not self.wrote(item)]
        if not new:
            return
        with storage.open_for_append(self.path, "the batch ledger") as handle:
            for output, (image, mask) in new:
                handle.write(json.dumps({"output": output, "image": image, "mask": mask}) + "\n")
                self._entries[output] = (image, mask)
