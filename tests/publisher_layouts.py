"""Model files laid out as their publishers ship them, written from the publishers' own
source (not from clearfill's exports), at random weights:

- the original LaMa ``big-lama/models/best.ckpt``: PyTorch Lightning 1.2.9's
  ``dump_checkpoint`` (``trainer/connectors/checkpoint_connector.py``) with LaMa's
  ``BaseInpaintingTrainingModule`` (``saicinpainting/training/trainers/base.py``),
  after LaMa's ``bin/make_checkpoint.py`` dropped ``optimizer_states``;
- IOPaint's MAT file ``Places_512_FullData_G.pth``: the ``Generator`` state dict
  (``iopaint/model/mat.py`` loads it with ``load_state_dict(strict=True)``);
- the FLUX.1 Fill transformer as Black Forest Labs ship ``flux1-fill-dev.safetensors``
  (their ``flux`` repository's key names, the inverse of diffusers'
  ``convert_flux_transformer_checkpoint_to_diffusers``);
- a ComfyUI ``models`` folder as the reference workflow's users have it.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from contextlib import contextmanager
from pathlib import Path

# ----------------------------------------------------------------------------- Lightning 1.2.9 best.ckpt


@contextmanager
def standin_modules(classes: dict[str, type]):
    """Make each ``module.Name`` in ``classes`` importable while pickling, then remove the
    modules again, so the file names classes the loading process does not have."""
    added = []
    for qualified, cls in classes.items():
        module_name, _, name = qualified.rpartition(".")
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix not in sys.modules:
                sys.modules[prefix] = types.ModuleType(prefix)
                added.append(prefix)
        cls.__module__, cls.__qualname__, cls.__name__ = module_name, name, name
        setattr(sys.modules[module_name], name, cls)
    try:
        yield
    finally:
        for prefix in added:
            del sys.modules[prefix]


def _lightning_classes() -> dict[str, type]:
    """Stand-ins with the real classes' module paths and pickled state (omegaconf 2.0/2.1:
    a DictConfig pickles its ``__dict__``: ``_metadata`` (a ContainerMetadata dataclass),
    ``_parent`` and ``_content``, a dict of nodes)."""
    from typing import Any

    @dataclasses.dataclass
    class Metadata:
        ref_type: Any = Any
        object_type: Any = None
        optional: bool = True
        key: Any = None
        flags: dict = dataclasses.field(default_factory=dict)

    @dataclasses.dataclass
    class ContainerMetadata(Metadata):
        key_type: Any = Any
        element_type: Any = Any

    class AnyNode:
        def __init__(self, value, key=None, parent=None):
            self._val, self._parent = value, parent
            self._metadata = Metadata(key=key)

    class DictConfig:
        def __init__(self, content: dict, key=None, parent=None):
            self._metadata = ContainerMetadata(object_type=dict, key=key)
            self._parent = parent
            self._content = {k: DictConfig(v, k, self) if isinstance(v, dict) else AnyNode(v, k, self)
                             for k, v in content.items()}

    class ModelCheckpoint:  # Lightning saves the callback's class as the key of its state
        pass

    return {"pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint": ModelCheckpoint,
            "omegaconf.dictconfig.DictConfig": DictConfig, "omegaconf.base.ContainerMetadata": ContainerMetadata,
            "omegaconf.base.Metadata": Metadata, "omegaconf.nodes.AnyNode": AnyNode}


LAMA_TRAINING_CONFIG = {  # an excerpt of big-lama's config.yaml, as save_hyperparameters(config) keeps it
    "generator": {"kind": "ffc_resnet", "input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3,
                  "n_blocks": 18, "add_out_act": "sigmoid"},
    "discriminator": {"kind": "pix2pixhd_nlayer", "input_nc": 3, "ndf": 64, "n_layers": 4},
    "optimizers": {"generator": {"kind": "adam", "lr": 0.001}, "discriminator": {"kind": "adam", "lr": 0.0001}},
    "training_model": {"kind": "default", "visualize_each_iters": 1000, "concat_mask": True},
}


def lightning_lama_checkpoint(generator_state: dict, path: Path, callback_payload=None) -> Path:
    """``best.ckpt`` as LaMa's training left it: the LightningModule's state dict (the
    generator under ``generator.``, the discriminator and the perceptual loss's network
    beside it), the callbacks keyed by class, the hyper-parameters as a DictConfig and
    its type. ``callback_payload`` replaces the ModelCheckpoint state (a hostile file)."""
    import torch

    classes = _lightning_classes()
    with standin_modules(classes):
        checkpoint_cls = classes["pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"]
        config_cls = classes["omegaconf.dictconfig.DictConfig"]
        state_dict = {f"generator.{key}": value for key, value in generator_state.items()}
        state_dict["discriminator.model0.0.weight"] = torch.zeros(64, 3, 4, 4)
        state_dict["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(64, 3, 7, 7)
        callback_state = callback_payload if callback_payload is not None else {
            "monitor": "val_ssim_fid100_f1_total_mean", "best_model_score": torch.tensor(0.9),
            "best_model_path": "/group-volume/lama/experiments/big-lama/models/best.ckpt",
            "current_score": torch.tensor(0.9), "dirpath": "/group-volume/lama/experiments/big-lama/models"}
        checkpoint = {
            "epoch": 39, "global_step": 1_000_000, "pytorch-lightning_version": "1.2.9",
            "callbacks": {checkpoint_cls: callback_state},
            "lr_schedulers": [],
            "state_dict": state_dict,
            "hyper_parameters": config_cls(LAMA_TRAINING_CONFIG),
            "hparams_type": config_cls,
        }  # make_checkpoint.py deleted "optimizer_states"
        torch.save(checkpoint, path)
    return path


# ----------------------------------------------------------------------------- FLUX.1 Fill single file


def _bfl_scale_shift(weight):
    """diffusers' AdaLayerNormContinuous splits (scale, shift); BFL's final layer (shift, scale)."""
    import torch

    scale, shift = weight.chunk(2, dim=0)
    return torch.cat([shift, scale], dim=0)


def diffusers_to_bfl(state: dict) -> dict:
    """A FluxTransformer2DModel state dict in the key layout of BFL's ``flux`` repository
    (``flux/model.py``: ``img_in``, ``time_in``, ``double_blocks.N.img_attn.qkv``,
    ``single_blocks.N.linear1`` ...), as ``flux1-fill-dev.safetensors`` ships it."""
    import torch

    out = {}
    embedders = {"time_text_embed.timestep_embedder": "time_in", "time_text_embed.text_embedder": "vector_in",
                 "time_text_embed.guidance_embedder": "guidance_in"}
    for ours, theirs in embedders.items():
        for kind in ("weight", "bias"):
            out[f"{theirs}.in_layer.{kind}"] = state[f"{ours}.linear_1.{kind}"]
            out[f"{theirs}.out_layer.{kind}"] = state[f"{ours}.linear_2.{kind}"]
    for kind in ("weight", "bias"):
        out[f"txt_in.{kind}"] = state[f"context_embedder.{kind}"]
        out[f"img_in.{kind}"] = state[f"x_embedder.{kind}"]
        out[f"final_layer.linear.{kind}"] = state[f"proj_out.{kind}"]
        out[f"final_layer.adaLN_modulation.1.{kind}"] = _bfl_scale_shift(state[f"norm_out.linear.{kind}"])
    double = sorted({int(k.split(".")[1]) for k in state if k.startswith("transformer_blocks.")})
    for i in double:
        ours, theirs = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for kind in ("weight", "bias"):
            pairs = {"norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin",
                     "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2", "ff_context.net.0.proj": "txt_mlp.0",
                     "ff_context.net.2": "txt_mlp.2", "attn.to_out.0": "img_attn.proj",
                     "attn.to_add_out": "txt_attn.proj"}
            for a, b in pairs.items():
                out[f"{theirs}{b}.{kind}"] = state[f"{ours}{a}.{kind}"]
            out[f"{theirs}img_attn.qkv.{kind}"] = torch.cat([state[f"{ours}attn.to_{x}.{kind}"] for x in "qkv"])
            out[f"{theirs}txt_attn.qkv.{kind}"] = torch.cat([state[f"{ours}attn.add_{x}_proj.{kind}"] for x in "qkv"])
        for a, b in {"norm_q": "img_attn.norm.query_norm", "norm_k": "img_attn.norm.key_norm",
                     "norm_added_q": "txt_attn.norm.query_norm", "norm_added_k": "txt_attn.norm.key_norm"}.items():
            out[f"{theirs}{b}.scale"] = state[f"{ours}attn.{a}.weight"]
    single = sorted({int(k.split(".")[1]) for k in state if k.startswith("single_transformer_blocks.")})
    for i in single:
        ours, theirs = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{theirs}modulation.lin.{kind}"] = state[f"{ours}norm.linear.{kind}"]
            out[f"{theirs}linear1.{kind}"] = torch.cat([state[f"{ours}attn.to_{x}.{kind}"] for x in "qkv"]
                                                       + [state[f"{ours}proj_mlp.{kind}"]])
            out[f"{theirs}linear2.{kind}"] = state[f"{ours}proj_out.{kind}"]
        out[f"{theirs}norm.query_norm.scale"] = state[f"{ours}attn.norm_q.weight"]
        out[f"{theirs}norm.key_norm.scale"] = state[f"{ours}attn.norm_k.weight"]
    return {key: value.contiguous() for key, value in out.items()}


def diffusers_vae_to_bfl(state: dict, levels: int) -> dict:
    """An AutoencoderKL state dict in the layout of BFL's ``ae.safetensors`` (``flux/modules/
    autoencoder.py``, the LDM names: ``encoder.down.I.block.J``, ``mid.attn_1`` with 1x1
    convolutions for q/k/v, ``decoder.up.I`` numbered from the bottom)."""
    import re

    out = {}
    renames = [
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.", lambda m: f"encoder.down.{m[1]}.block."),
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", lambda m: f"encoder.down.{m[1]}.downsample."),
        (r"^decoder\.up_blocks\.(\d+)\.resnets\.", lambda m: f"decoder.up.{levels - 1 - int(m[1])}.block."),
        (r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"decoder.up.{levels - 1 - int(m[1])}.upsample."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.", lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}."),
        (r"^(encoder|decoder)\.mid_block\.attentions\.0\.", lambda m: f"{m[1]}.mid.attn_1."),
        (r"conv_norm_out", lambda m: "norm_out"), (r"conv_shortcut", lambda m: "nin_shortcut"),
        (r"attn_1\.group_norm", lambda m: "attn_1.norm"), (r"attn_1\.to_out\.0", lambda m: "attn_1.proj_out"),
        (r"attn_1\.to_([qkv])\.", lambda m: f"attn_1.{m[1]}."),
    ]
    for key, value in state.items():
        for pattern, replace in renames:
            key = re.sub(pattern, replace, key)
        if ".attn_1." in key and key.endswith("weight") and value.dim() == 2:
            value = value[:, :, None, None]  # BFL's attention projections are 1x1 convolutions
        out[key] = value.contiguous()
    return out
