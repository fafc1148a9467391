"""Loading model files safely.

Weights come from safetensors files, or from pickles read with torch's restricted
unpickler (``weights_only=True``: tensors and plain containers only; a pickle that
would import ``os.system`` is refused). TorchScript archives carry code, so they
are loaded only when they are a registry file whose published checksum matches
the very bytes loaded: the file is read into memory once, hashed, and run from
that copy (no record beside the file is trusted, and nothing can swap the file
between the check and the load).
Architectures are detected by spandrel from the state dict's keys.

Training checkpoints (the original LaMa's ``best.ckpt``, saved by PyTorch Lightning)
also pickle Python objects next to the weights: the callback classes, an OmegaConf
config of the hyper-parameters. Those parts are thrown away, so every global they
name is read as an inert placeholder (a class that builds nothing and calls
nothing) and the part is dropped; a placeholder anywhere else refuses the file.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import zipfile
from pathlib import Path

from ..errors import ModelLoadError, UnsafeModelError
from . import store
from .registry import ModelEntry

SAFE_FORMATS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder (plain torch.save zips have none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def read_state_dict(path: Path, *, published: ModelEntry | None = None) -> dict:
    """The tensors of a model file, as a flat state dict in spandrel's canonical form.
    ``published``: the registry entry the file claims to be; a TorchScript file runs
    only when its bytes match that entry's published checksum."""
    import torch
    from spandrel import canonicalize_state_dict

    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file {path} is empty")
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return canonicalize_state_dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ModelLoadError(f"cannot read {path} as safetensors: {_first_line(exc)}") from None
    if is_torchscript(path):
        return canonicalize_state_dict(_published_torchscript(path, published).state_dict())
    if suffix not in SAFE_FORMATS:
        raise ModelLoadError(f"unsupported model file {path.name}; use one of {', '.join(SAFE_FORMATS)}")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        loaded = read_training_checkpoint(path, exc)
    except Exception as exc:  # torch reports truncated and foreign files in many ways (an empty pickle: IndexError)
        raise ModelLoadError(f"cannot read {path}: not a PyTorch weights file, or a truncated one "
                             f"({_first_line(exc)})") from None
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    return generator_only(canonicalize_state_dict(loaded))


def _published_torchscript(path: Path, published: ModelEntry | None):
    """A TorchScript module, loaded from the bytes whose checksum was just found to be
    ``published``'s; anything else is refused before a byte of its code runs."""
    import torch

    data = path.read_bytes()
    if published is None or not store.matches(published, store.bytes_digests(data)):
        raise UnsafeModelError(
            f"refused to load {path}: it is TorchScript (it carries code), which clearfill runs only for "
            "registry files whose published checksum matches; convert it to .safetensors to use it")
    return torch.jit.load(io.BytesIO(data), map_location="cpu")


# Top-level parts of a training checkpoint that are never used: Lightning's callback
# states (keyed by the callback classes), hyper-parameters (an OmegaConf DictConfig and
# its type), optimiser, scheduler, loop and mixed-precision states.
DISCARDED_PARTS = frozenset({
    "callbacks", "hyper_parameters", "hparams_type", "hparams_name", "datamodule_hyper_parameters",
    "optimizer_states", "lr_schedulers", "loops", "native_amp_scaling_state", "amp_scaling_state",
})


class Inert:
    """Stands in for a class or function a checkpoint names outside its weights: takes any
    arguments and any state and keeps none, so unpickling it runs no code of the file's."""

    origin = "?"

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


def _inert_standin(qualified_name: str) -> type:
    module, _, name = qualified_name.rpartition(".")
    return type(name or qualified_name, (Inert,), {"__module__": module, "origin": qualified_name})


def _find_inert(value, depth: int = 0):
    """The first placeholder inside ``value`` (containers searched, keys included), or None."""
    if isinstance(value, Inert) or (isinstance(value, type) and issubclass(value, Inert)):
        return value
    if depth > 64:
        return None
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value \
        if isinstance(value, (list, tuple, set, frozenset)) else ()
    return next((found for item in items if (found := _find_inert(item, depth + 1)) is not None), None)


def _first_line(error: BaseException, limit: int = 160) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pickle_imports(path: Path) -> list[str]:
    """The globals a bare pickle would import, read from its opcodes without running
    it (empty when the file is not a pickle at all)."""
    strings, imports = [], []
    try:
        with open(path, "rb") as handle:
            for opcode, argument, _ in pickletools.genops(handle):
                if opcode.name in ("GLOBAL", "INST"):
                    imports.append(argument.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    imports.append(".".join(strings[-2:]))
                elif isinstance(argument, str):
                    strings.append(argument)
    except Exception:  # garbage, or a pickle cut short: what was read so far is the answer
        pass
    return imports


def _refused(path: Path, culprit: str | None) -> UnsafeModelError:
    return UnsafeModelError(
        f"refused to load {path}: it holds Python objects beyond tensors"
        + (f" (it imports {culprit})" if culprit else "") + "; only plain weight files are loaded")


def read_training_checkpoint(path: Path, refusal: pickle.UnpicklingError) -> dict:
    """A checkpoint that torch's restricted unpickler refused, read again with every global
    it names as an inert placeholder; only the parts in ``DISCARDED_PARTS`` may hold one."""
    import torch

    if not zipfile.is_zipfile(path):  # a bare pickle, or not a pickle at all: nothing to read more safely
        imports = _pickle_imports(path)
        if not imports:
            raise ModelLoadError(f"cannot read {path}: not a PyTorch weights file, or a truncated one "
                                 f"({_first_line(refusal)})")
        raise _refused(path, imports[0])
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    standins = [(_inert_standin(name), name) for name in names]
    try:
        with torch.serialization.safe_globals(standins):
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a global pushed at run time, which the scan cannot see
        culprit = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise _refused(path, culprit and culprit.group(1)) from None
    if not isinstance(loaded, dict):
        found = _find_inert(loaded)
        raise _refused(path, found.origin if found is not None else None)
    for key, part in loaded.items():
        found = _find_inert(key) or (None if key in DISCARDED_PARTS else _find_inert(part))
        if found is not None:
            raise _refused(path, found.origin)
    return {key: part for key, part in loaded.items() if key not in DISCARDED_PARTS}


def generator_only(state_dict: dict) -> dict:
    """Training checkpoints of GAN inpainters (the original LaMa's ``best.ckpt``) also
    hold the discriminator and loss networks; only the generator is the model."""
    if any(key.startswith("generator.") for key in state_dict):
        return {key: value for key, value in state_dict.items() if key.startswith("generator.")}
    return state_dict


EXTRA_ARCHITECTURES_MISSING = "spandrel-extra-arches is not installed (pip install 'clearfill[models]')"


def install_extra_architectures() -> bool:
    """Add spandrel-extra-arches' architectures (MAT among them) to spandrel's registry, once;
    False when the package is missing."""
    try:
        import spandrel
        import spandrel_extra_arches
    except ImportError:
        return False
    if not any(support.architecture.id == "MAT" for support in spandrel.MAIN_REGISTRY.architectures()):
        spandrel_extra_arches.install()
    return True


def load_descriptor(path: Path, *, published: ModelEntry | None = None):
    """A spandrel model descriptor (architecture detected from the weights), on the CPU, in eval mode."""
    from spandrel import ModelLoader, UnsupportedModelError

    install_extra_architectures()
    state_dict = read_state_dict(path, published=published)
    try:
        descriptor = ModelLoader().load_from_state_dict(state_dict)
    except UnsupportedModelError:
        raise ModelLoadError(f"{path.name}: no known architecture matches these weights") from None
    except Exception as exc:  # keys of a known architecture, tensors of the wrong shapes (a very long message)
        raise ModelLoadError(f"{path.name}: the weights do not fit the architecture their names suggest "
                             f"({_first_line(exc)})") from None
    descriptor.model.eval()
    return descriptor
