"""Serving cost: the roofline time of N denoising steps with classifier-free guidance plus text
encoder and VAE decoder on one `Device`, for static, dynamic and APTP (per-code batch) serving."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.engines.device import Device
from dse.engines.pruning.counter import LayerCounts, count_layers, latent_side
from dse.engines.pruning.layers import (
    FloatArray,
    LayerTable,
    text_encoder_layer_table,
    unet_layer_table,
    vae_decoder_layer_table,
)
from dse.specs.common import Num
from dse.specs.diffusion import DiffusionPipelineSpec


def with_trailing_axes(device: Device, count: int) -> Device:
    """The same device with `count` unit axes appended to every rate, to broadcast against
    (..., codes, rows) arrays (a sweep may have made any rate an array)."""

    def expand(x: Num) -> FloatArray:
        out: FloatArray = np.asarray(x, dtype=np.float64).reshape(np.shape(x) + (1,) * count)
        return out

    return device.map_rates(expand)


def network_time_s(counts: LayerCounts, *, batch: Num, bytes_per_element: Num, device: Device) -> FloatArray:
    """Time of one forward pass at `batch` samples: sum over rows of the roofline time.

    Each row is one matrix op priced by `Device.op_time_s` (one kernel); a row with batch 0
    costs nothing (no launch). FLOP = 2 * MACs * batch; bytes = (params + batch * activation
    elements) * bytes per element. batch, bytes_per_element and the device's rates broadcast
    against the counts without their last (rows) axis.
    """
    n = np.asarray(batch, dtype=np.float64)[..., None]
    width = np.asarray(bytes_per_element, dtype=np.float64)[..., None]
    per_row = with_trailing_axes(device, 1)  # the rows axis
    cost = per_row.op_time_s(
        2.0 * counts.macs * n, (counts.params + n * counts.activation_elements) * width, op_class="matrix"
    )
    out: FloatArray = np.sum(np.where(n > 0, cost.time_s, 0.0), axis=-1)
    return out


@dataclass(frozen=True)
class ServingCost:
    """Seconds and images/s for a batch of `batch` prompts, per strategy (broadcast over inputs)."""

    static_latency_s: FloatArray
    dynamic_latency_s: FloatArray
    aptp_latency_s: FloatArray
    static_images_per_s: FloatArray
    dynamic_images_per_s: FloatArray
    aptp_images_per_s: FloatArray
    #: Parts of the APTP time: text encoder, all UNet steps, VAE decoder.
    aptp_text_encoder_s: FloatArray
    aptp_unet_s: FloatArray
    aptp_vae_s: FloatArray
    #: The unpruned pipeline at the same batch, for the latency cut.
    full_latency_s: FloatArray


def serving_cost(
    spec: DiffusionPipelineSpec,
    *,
    code_keep: Num,
    code_share: Num,
    static_keep: Num,
    image_side_px: Num,
    batch: Num,
    denoising_steps: Num,
    guidance_copies: Num,
    bytes_per_element: Num,
    device: Device,
) -> ServingCost:
    """Serving a batch of prompts through text encoder, N UNet steps and VAE decoder.

    code_keep (K, num_prunable, 3), code_share (..., K) summing to 1; static_keep (..., num_prunable, 3).
    guidance_copies = 2 with classifier-free guidance (conditional + unconditional UNet and
    text-encoder passes per image), 1 without.
    * static: one pruned network for the whole batch;
    * dynamic: a per-prompt network, so every prompt runs alone (batch 1), each its code's cost;
    * APTP: the batch splits by code into sub-batches run one after another; code k is drawn with
      probability 1 - (1 - s_k)^B and then serves B s_k / that probability prompts on average
      (exact at B = 1, where APTP costs what dynamic pruning does, and B s_k for large B).
    Text encoder and VAE decoder are not pruned; they batch over the whole batch except in dynamic.
    """
    unet_table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    side = np.asarray(latent_side(image_side_px, spec.unet), dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    steps = np.asarray(denoising_steps, dtype=np.float64)
    g = np.asarray(guidance_copies, dtype=np.float64)
    share = np.asarray(code_share, dtype=np.float64)
    keep = np.asarray(code_keep, dtype=np.float64)
    n_codes = keep.shape[-3]

    per_point = with_trailing_axes(device, 1)  # codes axis of the per-code calls
    width_per_point = np.asarray(bytes_per_element, dtype=np.float64)[..., None]

    def times(table: LayerTable, n: Num, keep_: Num | None, side_: Num, per_code: bool = False) -> FloatArray:
        counts = count_layers(table, latent_side=side_, keep=keep_)
        if per_code:
            return network_time_s(counts, batch=n, bytes_per_element=width_per_point, device=per_point)
        return network_time_s(counts, batch=n, bytes_per_element=bytes_per_element, device=device)

    text_table = text_encoder_layer_table(spec.text_encoder)
    vae_table = vae_decoder_layer_table(spec.vae_decoder)
    text_b = times(text_table, g * b, None, 0.0)
    vae_b = times(vae_table, b, None, side)
    text_1 = times(text_table, g, None, 0.0)
    vae_1 = times(vae_table, 1.0, None, side)

    side_k = side[..., None]  # codes on the last axis
    # Prompts of code k in a batch of B are Binomial(B, s_k): the code runs (and reads its
    # weights) only when it is drawn, with B s_k / P(drawn) prompts on average when it is.
    drawn = 1.0 - (1.0 - share) ** b[..., None]
    sub_batch = np.where(drawn > 0, b[..., None] * share / np.where(drawn > 0, drawn, 1.0), 0.0)
    unet_code_sub = drawn * times(unet_table, g[..., None] * sub_batch, keep, side_k, per_code=True)
    unet_code_1 = times(unet_table, g[..., None] * np.ones(n_codes), keep, side_k, per_code=True)
    unet_static = times(unet_table, g * b, static_keep, side)
    unet_full = times(unet_table, g * b, None, side)

    aptp_unet = steps * np.sum(unet_code_sub, axis=-1)
    aptp = text_b + aptp_unet + vae_b
    static = text_b + steps * unet_static + vae_b
    dynamic = b * np.sum(share * (text_1[..., None] + steps[..., None] * unet_code_1 + vae_1[..., None]), axis=-1)
    full = text_b + steps * unet_full + vae_b
    return ServingCost(
        static_latency_s=static,
        dynamic_latency_s=dynamic,
        aptp_latency_s=aptp,
        static_images_per_s=b / static,
        dynamic_images_per_s=b / dynamic,
        aptp_images_per_s=b / aptp,
        aptp_text_encoder_s=np.broadcast_to(text_b, aptp.shape).copy(),
        aptp_unet_s=aptp_unet,
        aptp_vae_s=np.broadcast_to(vae_b, aptp.shape).copy(),
        full_latency_s=full,
    )
