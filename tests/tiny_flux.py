"""FLUX.1 Fill pipelines built offline from configs at random weights: the real classes
and code paths. ``tiny`` sizes (one transformer block of each kind, a two-level VAE,
two-layer CLIP and T5) for tests; ``FULL`` holds the published sizes (12 B transformer,
T5-XXL, CLIP-L, FLUX's VAE) for the GPU benchmark. Tokenizers are made from a toy
vocabulary (the real ones cannot be downloaded here; they change no tensor shape)."""

from __future__ import annotations

from pathlib import Path

# FLUX.1's real width (24 heads of 128), which diffusers' single-file converter assumes
# (it splits the single blocks' fused projection at 3072): one block of each kind keeps
# it at 0.5 B parameters.
FLUX_WIDTH = {"attention_head_dim": 128, "num_attention_heads": 24, "axes_dims_rope": (16, 56, 56)}

# The published FLUX.1 Fill [dev] sizes (its repository's config files).
FULL = {
    "transformer": {"patch_size": 1, "in_channels": 384, "out_channels": 64, "num_layers": 19,
                    "num_single_layers": 38, "attention_head_dim": 128, "num_attention_heads": 24,
                    "joint_attention_dim": 4096, "pooled_projection_dim": 768, "guidance_embeds": True,
                    "axes_dims_rope": (16, 56, 56)},
    "vae": {"down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
            "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 16,
            "norm_num_groups": 32, "sample_size": 1024, "shift_factor": 0.1159, "scaling_factor": 0.3611,
            "use_quant_conv": False, "use_post_quant_conv": False},
    "clip": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
             "num_hidden_layers": 12, "projection_dim": 768, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
             "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
    "t5": {"vocab_size": 32128, "d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64, "num_layers": 24,
           "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
}


def tiny_configs(vae_levels: int = 2, **transformer_options) -> dict:
    latent_channels, scale = 4, 2 ** (vae_levels - 1)  # each VAE level after the first halves the size
    return {
        "transformer": {"patch_size": 1, "in_channels": 4 * latent_channels + 4 * latent_channels + 4 * scale * scale,
                        "out_channels": 4 * latent_channels, "num_layers": 1, "num_single_layers": 1,
                        "attention_head_dim": 16, "num_attention_heads": 2, "joint_attention_dim": 32,
                        "pooled_projection_dim": 32, "guidance_embeds": True, "axes_dims_rope": (4, 4, 8),
                        **transformer_options},
        "vae": {"down_block_types": ("DownEncoderBlock2D",) * vae_levels,
                "up_block_types": ("UpDecoderBlock2D",) * vae_levels,
                "block_out_channels": (8, 16, 16, 16)[:vae_levels], "layers_per_block": 1,
                "latent_channels": latent_channels, "norm_num_groups": 4, "sample_size": 32, "shift_factor": 0.0609,
                "scaling_factor": 1.5035, "use_quant_conv": False, "use_post_quant_conv": False},
        "clip": {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                 "num_hidden_layers": 2, "projection_dim": 32, "max_position_embeddings": 77,
                 "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        "t5": {"vocab_size": 64, "d_model": 32, "d_ff": 37, "d_kv": 8, "num_heads": 4, "num_layers": 2},
    }


def flux_fill_pipeline(configs: dict, seed: int = 0):
    """A FluxFillPipeline at random weights, in memory (on torch's default device and dtype)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        PreTrainedTokenizerFast,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**configs["transformer"]).eval()
    vae = AutoencoderKL(in_channels=3, out_channels=3, **configs["vae"]).eval()
    clip = CLIPTextModel(CLIPTextConfig(**configs["clip"])).eval()
    t5 = T5EncoderModel(T5Config(**configs["t5"])).eval()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{f"{c}</w>": 2 + i for i, c in enumerate(letters)},
             **{c: 30 + i for i, c in enumerate(letters)}}
    clip_tokenizer = CLIPTokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", model_max_length=77)
    word_level = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, **{c: 3 + i for i, c in
                                                                                   enumerate(letters)}},
                                            unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    t5_tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<pad>", eos_token="</s>",
                                           unk_token="<unk>", model_max_length=512)
    return FluxFillPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip,
                            tokenizer=clip_tokenizer, text_encoder_2=t5, tokenizer_2=t5_tokenizer,
                            transformer=transformer)


def build_tiny_flux_fill(folder: Path, seed: int = 0, vae_levels: int = 2, **transformer_options) -> Path:
    """Save a tiny FLUX.1 Fill pipeline in ``folder``. ``vae_levels`` = 4 gives FLUX's
    real 8x latent scale (fewer tokens at a given image size); ``transformer_options``
    replace the transformer's tiny sizes (FLUX_WIDTH: the real width, one block each)."""
    flux_fill_pipeline(tiny_configs(vae_levels, **transformer_options), seed).save_pretrained(folder)
    return folder
