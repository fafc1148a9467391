"""What a batch will do: the list of (image, mask, output) items.

Sources: a folder of images with a folder of masks (matched by relative path
without extension, else by file stem), a folder with one mask for every image, or
a manifest (CSV or JSONL with ``image``, ``mask`` and optional ``output`` columns).
Outputs keep the images' relative folder structure and format unless a format is
given.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..io import FORMATS

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


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def output_for(image: Path, root: Path, output_dir: Path, fmt: str | None) -> Path:
    relative = image.relative_to(root)
    if fmt:
        relative = relative.with_suffix("." + fmt.lower().lstrip("."))
    return output_dir / relative


def plan_folder(images: Path, masks: Path, output_dir: Path, fmt: str | None = None) -> Plan:
    image_files = _images_in(images)
    if not image_files:
        raise InvalidInputError(f"no images found in {images}")
    if masks.is_file():
        return Plan([Item(str(p), str(masks), str(output_for(p, images, output_dir, fmt))) for p in image_files])
    if not masks.is_dir():
        raise InvalidInputError(f"masks not found: {masks}")
    mask_files = _images_in(masks)
    by_relative = {p.relative_to(masks).with_suffix(""): p for p in mask_files}
    by_stem: dict[str, list[Path]] = {}
    for p in mask_files:
        by_stem.setdefault(p.stem, []).append(p)
    plan, used = Plan([]), set()
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


def plan_manifest(manifest: Path, output_dir: Path | None, fmt: str | None = None) -> Plan:
    """Rows with ``image``, ``mask`` and (unless ``output_dir`` is given) ``output``;
    relative paths are relative to the manifest's folder."""
    if manifest.suffix.lower() == ".csv":
        with open(manifest, newline="") as handle:
            rows = list(csv.DictReader(handle))
    elif manifest.suffix.lower() in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    else:
        raise InvalidInputError(f"a manifest must be .csv or .jsonl, got {manifest.name}")
    base = manifest.parent
    items = []
    for number, row in enumerate(rows, start=1):
        if not row.get("image") or not row.get("mask"):
            raise InvalidInputError(f"{manifest.name} row {number}: needs 'image' and 'mask'")
        image = _resolve(row["image"], base)
        if row.get("output"):
            output = _resolve(row["output"], base)
        elif output_dir is not None:
            name = Path(image).name if not fmt else Path(image).with_suffix("." + fmt.lstrip(".")).name
            output = str(output_dir / name)
        else:
            raise InvalidInputError(f"{manifest.name} row {number}: no 'output' column and no -o folder")
        items.append(Item(image, _resolve(row["mask"], base), output))
    return Plan(items)


def _resolve(value: str, base: Path) -> str:
    return value if "://" in value or Path(value).is_absolute() else str(base / value)
