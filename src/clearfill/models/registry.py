"""The registry of known model files: where to get them and how to check them.

Checksums are the published ones: big-lama.pt's and MAT's MD5 come from IOPaint,
which distributes both; the MoSR upscaler's SHA-256 from its OpenModelDB entry. Where none is published the entry has
none, and the manager records the SHA-256 it downloaded, so later runs detect a
file that changed; such files are never trusted to run code (TorchScript).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidConfigError

KINDS = ("remover", "upscaler", "refiner", "selector")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # one of KINDS
    filename: str
    urls: tuple[str, ...]
    license: str
    source: str  # the page that documents the model
    size_mb: float | None = None  # approximate, for listings and progress
    sha256: str | None = None
    md5: str | None = None  # only where that is all the publisher gives
    summary: str = ""

    @property
    def url_variable(self) -> str:
        """Environment variable that replaces the download URL (a mirror, a file://)."""
        return "CLEARFILL_URL_" + self.name.upper().replace("-", "_").replace(".", "_")

    def download_urls(self) -> tuple[str, ...]:
        override = os.environ.get(self.url_variable)
        return (override,) if override else self.urls

    @property
    def has_published_checksum(self) -> bool:
        return bool(self.sha256 or self.md5)


REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in [
    ModelEntry(
        name="big-lama",
        kind="remover",
        filename="big-lama.pt",
        urls=("https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",),
        md5="e3aa4aaa15225a33ec84f9f4bc47e500",
        size_mb=196,
        license="Apache-2.0",
        source="https://github.com/advimman/lama",
        summary="LaMa (big-lama, Places2), TorchScript export distributed by IOPaint",
    ),
    ModelEntry(
        name="mat-places512",
        kind="remover",
        filename="Places_512_FullData_G.pth",
        urls=("https://github.com/Sanster/models/releases/download/add_mat/Places_512_FullData_G.pth",),
        md5="8ca927835fa3f5e21d65ffcb165377ed",  # IOPaint's MAT_MODEL_MD5
        size_mb=413,
        license="see source (research code; check its terms before commercial use)",
        source="https://github.com/fenglinglwb/MAT",
        summary="MAT, Places 512 generator (needs spandrel-extra-arches)",
    ),
    ModelEntry(
        name="2x-animesharpv2-mosr-sharp",
        kind="upscaler",
        filename="2x-AnimeSharpV2_MoSR_Sharp.pth",
        urls=("https://github.com/Kim2091/Kim2091-Models/releases/download/2x-AnimeSharpV2_Set/"
              "2x-AnimeSharpV2_MoSR_Sharp.pth",),
        sha256="5a69d1c681aef2251802e69131631868b451c3874e0afb46f55bd6cc820e6400",  # OpenModelDB's entry
        size_mb=17.3,
        license="CC-BY-NC-SA-4.0 (per OpenModelDB)",
        source="https://openmodeldb.info/models/2x-AnimeSharpV2-MoSR-Sharp",
        summary="2x MoSR super-resolution, the reference workflow's upscaler",
    ),
    ModelEntry(
        name="flux1-fill-dev",
        kind="refiner",
        filename="black-forest-labs/FLUX.1-Fill-dev",
        urls=("hf://black-forest-labs/FLUX.1-Fill-dev",),
        size_mb=33000,
        license="FLUX.1 [dev] Non-Commercial License (gated: accept it on the Hub and use a token)",
        source="https://huggingface.co/black-forest-labs/FLUX.1-Fill-dev",
        summary="FLUX.1 Fill [dev], the reference workflow's refiner (a Hugging Face repository)",
    ),
    ModelEntry(
        name="sam2.1-hiera-tiny",
        kind="selector",
        filename="facebook/sam2.1-hiera-tiny",
        urls=("hf://facebook/sam2.1-hiera-tiny",),
        size_mb=156,
        license="Apache-2.0",
        source="https://huggingface.co/facebook/sam2.1-hiera-tiny",
        summary="SAM 2.1 Hiera-Tiny (transformers weights): select an object by a click, box or lasso",
    ),
]}


def entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise InvalidConfigError(
            f"unknown model {name!r}; known: {', '.join(REGISTRY)} (or give a path to a local file)"
        ) from None


def hub_source(model: str) -> tuple[str, bool] | None:
    """For the Hugging Face loaders (diffusers, transformers): (what to hand them,
    whether it is a local path) for a registry name (its hf:// repository), an
    existing file or folder, or a repository id ("owner/name"); None for none of them."""
    entry = REGISTRY.get(model)
    if entry is not None:
        url = entry.download_urls()[0]
        return (url[len("hf://"):] if url.startswith("hf://") else url), False
    path = Path(model).expanduser()
    if path.exists():
        return str(path), True
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model, False
    return None
