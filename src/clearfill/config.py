"""The pipeline's configuration: one frozen dataclass per stage, and named presets.

A preset is a complete ``PipelineConfig``; overrides (``"crop.padding": 32`` or
``crop={"padding": 32}``) replace single parameters and are checked by name and
type. Configs flow preset -> stage constructors; there is no global state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from . import options as opts
from .errors import InvalidConfigError
from .stages import CropConfig, MaskPrepConfig, RefineConfig, RemoveConfig, ResizeConfig, StitchConfig

REFERENCE_SEED = 923958228  # the reference workflow's fixed seed


@dataclass(frozen=True)
class PipelineConfig:
    mask: MaskPrepConfig = field(default_factory=MaskPrepConfig)
    remove: RemoveConfig = field(default_factory=RemoveConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    stitch: StitchConfig = field(default_factory=StitchConfig)

    def with_overrides(self, overrides: Mapping[str, Any]) -> PipelineConfig:
        """Apply ``{"stage.param": value}`` and/or ``{"stage": {param: value}}`` overrides.

        ``remove.method`` picks the remover; any other ``remove.*`` name is an option
        of that remover (checked when the remover is built). Changing the method
        drops the preset's options for the previous one.
        """
        grouped: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            section, dot, param = key.partition(".")
            if section not in SECTIONS:
                raise InvalidConfigError(f"unknown stage {section!r} in {key!r}; stages: {', '.join(SECTIONS)}")
            if dot:
                grouped.setdefault(section, {})[param] = value
            elif isinstance(value, Mapping):
                grouped.setdefault(section, {}).update(value)
            else:
                raise InvalidConfigError(f"override {key!r} needs a parameter name, e.g. {key}.<param>=value")
        config = self
        for section, values in grouped.items():
            current = getattr(config, section)
            if section == "remove":
                values = dict(values)
                method = values.pop("method", current.method)
                kept = current.options if method == current.method else {}  # options belong to their remover
                given = values.pop("options", {})
                if not isinstance(given, Mapping):
                    raise InvalidConfigError(f"remove.options must be a mapping of the remover's parameters, "
                                             f"got {type(given).__name__}")
                merged = {**kept, **given, **values}
                updated = RemoveConfig(method=str(method), options=merged)
            else:
                updated = opts.replace(current, values, section)
            config = replace(config, **{section: updated})
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = ("mask", "remove", "crop", "resize", "refine", "stitch")

PRESETS: dict[str, PipelineConfig] = {
    # The reference workflow's exact parameters (../shared/seed-example/README.md).
    "reference": PipelineConfig(
        mask=MaskPrepConfig(blur_radius=11.0, blur_threshold=1 - 180 / 255),
        remove=RemoveConfig(method="auto"),
        crop=CropConfig(expand_pixels=64, expand_factor=1.2, padding=64, mask_blur_pixels=8.0, blend_pixels=32.0),
        resize=ResizeConfig(target_pixels=1024 * 1024, multiple=64, method="lanczos",
                            upscaler="2x-animesharpv2-mosr-sharp"),
        refine=RefineConfig(model="flux1-fill-dev", strength=0.8, steps=20, guidance=30.0),
        stitch=StitchConfig(method="lanczos"),
    ),
    # Weight-free and quick: the smooth fill, a tight crop, no refinement.
    "fast": PipelineConfig(
        mask=MaskPrepConfig(grow_pixels=2.0),
        remove=RemoveConfig(method="telea", options={"radius": 3}),
        crop=CropConfig(expand_pixels=32, expand_factor=1.1, padding=16, mask_blur_pixels=4.0, blend_pixels=8.0),
        resize=ResizeConfig(target_pixels=512 * 512, multiple=16),
        refine=RefineConfig(model=None),
    ),
    # No weights, no network: the best weight-free remover, no refinement.
    "offline": PipelineConfig(
        mask=MaskPrepConfig(grow_pixels=3.0),
        remove=RemoveConfig(method="exemplar"),
        crop=CropConfig(expand_pixels=64, expand_factor=1.2, padding=64, mask_blur_pixels=8.0, blend_pixels=16.0),
        refine=RefineConfig(model=None),
    ),
}


def preset(name: str) -> PipelineConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


def parse_assignment(text: str) -> tuple[str, str]:
    """``"crop.padding=32"`` -> ``("crop.padding", "32")`` (values are typed later)."""
    key, eq, value = text.partition("=")
    if not eq or "." not in key:
        raise InvalidConfigError(f"--set expects stage.param=value, got {text!r}")
    return key.strip(), value.strip()
