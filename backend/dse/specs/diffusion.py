"""Latent text-to-image diffusion pipelines: UNet, text encoder and VAE decoder shapes.

Field names follow the diffusers / transformers configuration files they are read from
(`unet/config.json`, `text_encoder/config.json`, `vae/config.json`), so a preset can be
checked against its source line by line. Counts are dimensionless (channels, layers, tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import PositiveInt

DownBlockType = Literal["CrossAttnDownBlock2D", "DownBlock2D"]
UpBlockType = Literal["CrossAttnUpBlock2D", "UpBlock2D"]


@dataclass(frozen=True)
class UNetSpec:
    """A diffusers `UNet2DConditionModel` (Stable Diffusion 1.x / 2.x family).

    `num_attention_heads` is per down block (the up path mirrors it). Diffusers' SD 1.x/2.x
    configs store this number under the legacy key `attention_head_dim`; it is the head
    count, and the head width is the block's channels divided by it.
    """

    in_channels: PositiveInt
    out_channels: PositiveInt
    block_out_channels: tuple[PositiveInt, ...]
    layers_per_block: PositiveInt
    down_block_types: tuple[DownBlockType, ...]
    up_block_types: tuple[UpBlockType, ...]
    num_attention_heads: tuple[PositiveInt, ...]
    cross_attention_dim: PositiveInt
    use_linear_projection: bool
    transformer_layers_per_block: PositiveInt = 1
    #: GEGLU feed-forward: inner width = ff_mult * channels (diffusers FeedForward default 4).
    ff_mult: PositiveInt = 4
    #: Time embedding width = time_embed_mult * block_out_channels[0] (diffusers: 4).
    time_embed_mult: PositiveInt = 4
    #: Down-sampling factor of the VAE: latent side = image side / this.
    vae_scale_factor: PositiveInt = 8


@dataclass(frozen=True)
class TextEncoderSpec:
    """A CLIP / OpenCLIP text transformer (pre-LayerNorm, GELU MLP, biases, learned positions)."""

    hidden_size: PositiveInt
    num_hidden_layers: PositiveInt
    num_attention_heads: PositiveInt
    intermediate_size: PositiveInt
    vocab_size: PositiveInt
    max_position_embeddings: PositiveInt


@dataclass(frozen=True)
class VAEDecoderSpec:
    """The decoder half of a diffusers `AutoencoderKL` (plus its post-quant 1x1 conv)."""

    latent_channels: PositiveInt
    out_channels: PositiveInt
    block_out_channels: tuple[PositiveInt, ...]
    #: Resnets per up block are layers_per_block + 1 in the decoder.
    layers_per_block: PositiveInt


@dataclass(frozen=True)
class DiffusionPipelineSpec:
    """A text-to-image latent diffusion pipeline, enough to count parameters and MACs exactly."""

    id: str
    name: str
    source: str
    unet: UNetSpec
    text_encoder: TextEncoderSpec
    vae_decoder: VAEDecoderSpec
    #: The resolution the model was trained for (px, one side).
    native_resolution_px: PositiveInt
    published_unet_params_count: float
    published_unet_params_source: str
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)
