"""Choosing the torch device and the precision a model runs at."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """"auto" -> cuda if present, else mps, else cpu; an explicit device must exist."""
    import torch

    if name not in DEVICES and not name.startswith("cuda:"):
        raise InvalidConfigError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}", setting="device")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name.startswith("cuda") and not cuda:
        raise InvalidConfigError("a CUDA device was asked for but none is available", setting="device")
    if name == "mps" and not mps:
        raise InvalidConfigError("the Metal (MPS) device was asked for but it is not available", setting="device")
    return name


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class PrecisionPolicy:
    """The precisions a model may run at on a GPU; the first is what "auto" picks.

    Precision is a property of the model, not of the device: LaMa's Fourier
    convolutions need fp32 FFTs on every GPU, FLUX is trained and shipped in bf16.
    CPUs always run fp32 (half-precision convolutions and FFTs have no fast or no
    CPU kernels at all)."""

    model: str
    gpu: tuple[str, ...]
    why: str = ""  # why the precisions left out of ``gpu`` are refused

    def __post_init__(self) -> None:
        if not self.gpu or not set(self.gpu) <= set(PRECISIONS[1:]):
            raise ValueError(f"bad GPU precisions {self.gpu}")

    def choose(self, precision: str, device: str) -> str:
        """"fp32", "fp16" or "bf16" for ``precision`` (as the user gave it) on ``device``."""
        if precision not in PRECISIONS:
            raise InvalidConfigError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        if device == "cpu":
            return "fp32"
        if precision == "auto":
            return self.gpu[0]
        if precision not in self.gpu:
            raise InvalidConfigError(f"{self.model} cannot run in {precision} (allowed: {', '.join(self.gpu)})"
                                     + (f": {self.why}" if self.why else ""))
        return precision

    def dtype(self, precision: str, device: str):
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.choose(precision, device)]


LAMA_PRECISION = PrecisionPolicy(
    "LaMa", ("fp32",), "its Fourier convolutions need fp32 FFTs (torch has no bf16 FFT kernel, and spandrel's "
    "FourierUnit casts the spectrum to float, so half weights fail with a dtype mismatch)")
MAT_PRECISION = PrecisionPolicy(
    "MAT", ("fp32",), "spandrel marks it fp16-unsafe, and its style latent is cast to fp32 inside the mapping "
    "network, so bf16 weights fail with a dtype mismatch")
FLUX_PRECISION = PrecisionPolicy("FLUX.1", ("bf16", "fp16", "fp32"))


def spandrel_precision(descriptor, name: str) -> PrecisionPolicy:
    """The policy spandrel's flags give an architecture: fp16 where it is safe, else bf16, else fp32."""
    halves = (("fp16",) if descriptor.supports_half else ()) + (("bf16",) if descriptor.supports_bfloat16 else ())
    return PrecisionPolicy(name, halves + ("fp32",), "spandrel marks the other precisions unsupported")
