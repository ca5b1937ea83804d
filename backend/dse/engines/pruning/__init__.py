"""Prompt-routed pruning of text-to-image diffusion models (APTP, Ganjdanesh et al., ICLR'25).

Plain numpy and broadcasting, one module per topic:

* `layers`: the **layer table** of a latent-diffusion pipeline (UNet, text encoder, VAE decoder),
  built once from the block structure of a diffusers configuration: one row per weight layer,
  norm or attention matmul, with its fan-in/out, kernel, token count and which keep fraction
  scales it;
* `counter`: the **UNet parameter and MAC counter**, turning the table, the latent side and
  per-block keep fractions into parameters, MACs and activation traffic per row (so per block and
  per category: convolution, linear, self-attention matmul, cross-attention matmul), vectorised
  over resolution and codes;
* `codes`: **architecture codes**, their resource ratio R_k and the uniform code with a given R;
* `routing`: entropic optimal transport (**Sinkhorn**, log domain) of a prompt mix onto K codes,
  with the budget check;
* `serving`: the **serving cost**, op by op on one `dse.engines.device.Device` under its software
  stack (implicit-GEMM convolutions, linears, fused or unfused attention, memory-bound norms and
  element-wise ops with their launches), of N denoising steps with classifier-free guidance plus
  text encoder and VAE decoder, for static, dynamic and APTP serving.

An architecture code keeps, per prunable block, a fraction of the ResNet inner channels, of the
attention heads and of the GEGLU feed-forward width; the residual stream width is untouched
(APTP's width gates sit inside the blocks). MAC = one multiply-accumulate; FLOP = 2 MAC.
"""

from __future__ import annotations

from dse.engines.pruning.codes import resource_ratio, uniform_keep_for_ratio
from dse.engines.pruning.counter import (
    BlockCounts,
    LayerCounts,
    count_blocks,
    count_layers,
    latent_side,
    sum_by_block_and_category,
    total_macs,
)
from dse.engines.pruning.layers import (
    CATEGORY_NAMES,
    CONV,
    CROSS_ATTENTION,
    ELEMENTWISE,
    EMBEDDING,
    GROUP_NORM_PASSES,
    KEEP_CHANNELS,
    KEEP_FFN,
    KEEP_HEADS,
    KEEP_NONE,
    LAYER_NORM_PASSES,
    LINEAR,
    NORM,
    SELF_ATTENTION,
    TIMESTEP_EMBEDDING_OPS,
    FloatArray,
    IntArray,
    LayerTable,
    text_encoder_layer_table,
    unet_layer_table,
    vae_decoder_layer_table,
)
from dse.engines.pruning.routing import Routing, TransportPlan, route_prompts, routing_cost, sinkhorn
from dse.engines.pruning.serving import (
    ServingCost,
    fp32_math_devices,
    fused_head_dim,
    network_time_s,
    serving_cost,
    with_trailing_axes,
)

__all__ = [
    "CATEGORY_NAMES",
    "CONV",
    "CROSS_ATTENTION",
    "ELEMENTWISE",
    "EMBEDDING",
    "GROUP_NORM_PASSES",
    "KEEP_CHANNELS",
    "KEEP_FFN",
    "KEEP_HEADS",
    "KEEP_NONE",
    "LAYER_NORM_PASSES",
    "LINEAR",
    "NORM",
    "SELF_ATTENTION",
    "TIMESTEP_EMBEDDING_OPS",
    "BlockCounts",
    "FloatArray",
    "IntArray",
    "LayerCounts",
    "LayerTable",
    "Routing",
    "ServingCost",
    "TransportPlan",
    "count_blocks",
    "count_layers",
    "fp32_math_devices",
    "fused_head_dim",
    "latent_side",
    "network_time_s",
    "resource_ratio",
    "route_prompts",
    "routing_cost",
    "serving_cost",
    "sinkhorn",
    "sum_by_block_and_category",
    "text_encoder_layer_table",
    "total_macs",
    "unet_layer_table",
    "uniform_keep_for_ratio",
    "vae_decoder_layer_table",
    "with_trailing_axes",
]
