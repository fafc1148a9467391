"""Choosing the torch device and the precision a model runs at."""

from __future__ import annotations

from ..errors import InvalidConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """"auto" -> cuda if present, else mps, else cpu; an explicit device must exist."""
    import torch

    if name not in DEVICES and not name.startswith("cuda:"):
        raise InvalidConfigError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name.startswith("cuda") and not cuda:
        raise InvalidConfigError("--device cuda was asked for but no CUDA device is available")
    if name == "mps" and not mps:
        raise InvalidConfigError("--device mps was asked for but Metal (MPS) is not available")
    return name


def resolve_dtype(precision: str, device: str, supports_half: bool, supports_bfloat16: bool):
    """The torch dtype for ``precision`` ("auto", "fp32", "fp16", "bf16") on ``device``,
    never one the model does not support. "auto" is fp16/bf16 on GPUs; CPUs always run fp32."""
    import torch

    if precision not in ("auto", "fp32", "fp16", "bf16"):
        raise InvalidConfigError(f"unknown precision {precision!r}; choose from auto, fp32, fp16, bf16")
    if device == "cpu":  # CPU runs fp32: half-precision FFTs (LaMa's core) have no CPU kernels
        return torch.float32
    if precision == "auto":
        precision = "fp16" if supports_half else "bf16" if supports_bfloat16 else "fp32"
    if precision == "fp16" and supports_half:
        return torch.float16
    if precision == "bf16" and supports_bfloat16:
        return torch.bfloat16
    return torch.float32
