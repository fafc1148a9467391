"""What a batch will do: the list of (image, mask, output) items.

Sources: a folder of images with a folder of masks (matched by relative path
without extension, else by file stem), a folder with one mask for every image, or
a manifest (CSV or JSONL with ``image``, ``mask`` and optional ``output`` columns).
Outputs keep the images' relative folder structure and format unless a format is
given. Every plan names its output root: ``-o``, or a manifest's own folder; the
checks in ``safety`` keep every output inside it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..io import FORMATS, regular_file

IMAGE_SUFFIXES = tuple(FORMATS)


@dataclass(frozen=True)
class Item:
    image: str
    mask: str
    output: str


@dataclass
class Plan:
    items: list[Item]
    images_without_mask: list[str] = field(default_factory=list)
    masks_without_image: list[str] = field(default_factory=list)
    output_root: str | None = None  # every output must lie inside it
    sources: list[str] = field(default_factory=list)  # files the plan was read from (a manifest): never written


def _images_in(folder: Path, skip: Path | None = None) -> list[Path]:
    """Image files under ``folder``, except hidden ones and those under ``skip`` (an
    output folder inside the input folder: earlier results are not new inputs)."""
    skip = skip.resolve() if skip is not None and skip.resolve() != folder.resolve() else None
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith(".") and not (skip and p.resolve().is_relative_to(skip)))


def output_for(image: Path, root: Path, output_dir: Path, fmt: str | None) -> Path:
    relative = image.relative_to(root)
    if fmt:
        relative = relative.with_suffix("." + fmt.lower().lstrip("."))
    return output_dir / relative


def plan_folder(images: Path, masks: Path, output_dir: Path, fmt: str | None = None) -> Plan:
    image_files = _images_in(images, skip=output_dir)
    if not image_files:
        raise InvalidInputError(f"no images found in {images}")
    if masks.is_file():
        return Plan([Item(str(p), str(masks), str(output_for(p, images, output_dir, fmt))) for p in image_files],
                    output_root=str(output_dir))
    if not masks.is_dir():
        raise InvalidInputError(f"masks not found: {masks}")
    mask_files = _images_in(masks, skip=output_dir)
    by_relative = {p.relative_to(masks).with_suffix(""): p for p in mask_files}
    by_stem: dict[str, list[Path]] = {}
    for p in mask_files:
        by_stem.setdefault(p.stem, []).append(p)
    plan, used = Plan([], output_root=str(output_dir)), set()
    for image in image_files:
        mask = by_relative.get(image.relative_to(images).with_suffix(""))
        if mask is None and len(by_stem.get(image.stem, [])) == 1:
            mask = by_stem[image.stem][0]
        if mask is None:
            plan.images_without_mask.append(str(image))
            continue
        used.add(mask)
        plan.items.append(Item(str(image), str(mask), str(output_for(image, images, output_dir, fmt))))
    plan.masks_without_image = [str(p) for p in mask_files if p not in used]
    return plan


def plan_detect(images: Path, output_dir: Path, fmt: str | None = None) -> Plan:
    """Every image in ``images``, its mask to be found on it (``Settings.detect``)."""
    image_files = _images_in(images, skip=output_dir)
    if not image_files:
        raise InvalidInputError(f"no images found in {images}")
    return Plan([Item(str(p), "", str(output_for(p, images, output_dir, fmt))) for p in image_files],
                output_root=str(output_dir))


def plan_manifest(manifest: Path, output_dir: Path | None, fmt: str | None = None) -> Plan:
    """Rows with ``image``, ``mask`` and (unless ``output_dir`` is given) ``output``.
    Images and masks are relative to the manifest's folder, outputs to ``output_dir``
    when given, else to the manifest's folder; that folder is the output root."""
    rows = _manifest_rows(manifest)
    base = manifest.parent
    root = output_dir if output_dir is not None else base
    items = []
    for number, row in enumerate(rows, start=1):
        if not all(isinstance(row.get(key), str) and row[key] for key in ("image", "mask")):
            raise InvalidInputError(f"{manifest.name} row {number}: needs 'image' and 'mask'")
        if any("\x00" in str(row.get(key) or "") for key in ("image", "mask", "output")):
            raise InvalidInputError(f"{manifest.name} row {number}: a file name with a NUL byte")
        image = _resolve(row["image"], base)
        if row.get("output"):
            output = _resolve(str(row["output"]), root)
        elif output_dir is not None:
            name = Path(image).name if not fmt else Path(image).with_suffix("." + fmt.lstrip(".")).name
            output = str(output_dir / name)
        else:
            raise InvalidInputError(f"{manifest.name} row {number}: no 'output' column and no -o folder")
        items.append(Item(image, _resolve(row["mask"], base), output))
    return Plan(items, output_root=str(root), sources=[str(manifest)])


def _manifest_rows(manifest: Path) -> list[dict]:
    suffix = manifest.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise InvalidInputError(f"a manifest must be .csv or .jsonl, got {manifest.name}")
    try:
        text = regular_file(manifest, "the manifest").read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the manifest {manifest}: {exc}") from None
    if suffix == ".csv":
        try:
            return list(csv.DictReader(text.splitlines()))
        except csv.Error as exc:  # a field over csv's limit (128 kB), a stray quote in strict mode
            raise InvalidInputError(f"the manifest {manifest.name} is not a CSV clearfill can read: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInputError(f"{manifest.name} line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{manifest.name} line {number} must be a JSON object")
        rows.append(row)
    return rows


def _resolve(value: str, base: Path) -> str:
    return value if "://" in value or Path(value).is_absolute() else str(base / value)
