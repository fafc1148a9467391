"""Loading model files safely.

Weights come from safetensors files, or from pickles read with torch's restricted
unpickler (``weights_only=True``: tensors and plain containers only; a pickle that
would import ``os.system`` is refused). TorchScript archives carry code, so they
are loaded only when they are a registry file whose published checksum matches.
Architectures are detected by spandrel from the state dict's keys.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

from ..errors import ModelLoadError, UnsafeModelError

SAFE_FORMATS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder (plain torch.save zips have none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def read_state_dict(path: Path, *, torchscript_trusted: bool = False) -> dict:
    """The tensors of a model file, as a flat state dict in spandrel's canonical form."""
    import torch
    from spandrel import canonicalize_state_dict

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return canonicalize_state_dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ModelLoadError(f"cannot read {path} as safetensors: {exc}") from None
    if is_torchscript(path):
        if not torchscript_trusted:
            raise UnsafeModelError(
                f"refused to load {path}: it is TorchScript (it carries code), which clearfill runs only for "
                "registry files whose published checksum matches; convert it to .safetensors to use it"
            )
        return canonicalize_state_dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    if suffix not in SAFE_FORMATS:
        raise ModelLoadError(f"unsupported model file {path.name}; use one of {', '.join(SAFE_FORMATS)}")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        culprit = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise UnsafeModelError(
            f"refused to load {path}: it holds Python objects beyond tensors"
            + (f" (it imports {culprit.group(1)})" if culprit else "") + "; only plain weight files are loaded"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    return generator_only(canonicalize_state_dict(loaded))


def generator_only(state_dict: dict) -> dict:
    """Training checkpoints of GAN inpainters (the original LaMa's ``best.ckpt``) also
    hold the discriminator and loss networks; only the generator is the model."""
    if any(key.startswith("generator.") for key in state_dict):
        return {key: value for key, value in state_dict.items() if key.startswith("generator.")}
    return state_dict


def load_descriptor(path: Path, *, torchscript_trusted: bool = False):
    """A spandrel model descriptor (architecture detected from the weights), on the CPU, in eval mode."""
    from spandrel import ModelLoader, UnsupportedModelError

    state_dict = read_state_dict(path, torchscript_trusted=torchscript_trusted)
    try:
        descriptor = ModelLoader().load_from_state_dict(state_dict)
    except UnsupportedModelError:
        raise ModelLoadError(f"{path.name}: no known architecture matches these weights") from None
    descriptor.model.eval()
    return descriptor
