"""A tiny FLUX.1 Fill pipeline built offline from configs (one transformer block, a
two-level VAE, two-layer CLIP and T5 text encoders, tokenizers made from a toy
vocabulary), at random weights: the real classes and code paths, none of the size."""

from __future__ import annotations

from pathlib import Path


def build_tiny_flux_fill(folder: Path, seed: int = 0, vae_levels: int = 2) -> Path:
    """Save a tiny FLUX.1 Fill pipeline in ``folder``. ``vae_levels`` = 4 gives FLUX's
    real 8x latent scale (fewer tokens at a given image size)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(seed)
    latent_channels, scale = 4, 2 ** (vae_levels - 1)  # each VAE level after the first halves the size
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * latent_channels + 4 * latent_channels + 4 * scale * scale,
        out_channels=4 * latent_channels, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(4, 4, 8)).eval()
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * vae_levels,
        up_block_types=("UpDecoderBlock2D",) * vae_levels, block_out_channels=(8, 16, 16, 16)[:vae_levels],
        layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=4, sample_size=32, shift_factor=0.0609,
        scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False).eval()
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=64, hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                        num_hidden_layers=2, projection_dim=32, max_position_embeddings=77,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2)).eval()
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
    pipeline = FluxFillPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip,
                                tokenizer=clip_tokenizer, text_encoder_2=t5, tokenizer_2=t5_tokenizer,
                                transformer=transformer)
    pipeline.save_pretrained(folder)
    return folder
