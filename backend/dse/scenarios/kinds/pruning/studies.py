"""Analyses of the `pruning` kind beyond its metrics: the per-block, per-code, routing and
throughput tables, and the engine's numbers in a published setting (MACs in another counter's
convention, latencies of pruned models at given resource ratios)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.engines import pruning as eng
from dse.engines.device import Device
from dse.scenarios.base import Column, Table
from dse.scenarios.kinds.pruning.inputs import PruningResolved
from dse.scenarios.kinds.pruning.metrics import Core
from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec

#: MAC categories shown in tables and charts, in display order, with their labels.
SHOWN_CATEGORIES: tuple[str, ...] = ("conv", "linear", "self_attention", "cross_attention")
MAC_CATEGORY_LABELS: dict[str, str] = {
    "conv": "convolution",
    "linear": "linear",
    "self_attention": "self-attention matmuls",
    "cross_attention": "cross-attention matmuls",
}
CATEGORY_INDEX: tuple[int, ...] = tuple(eng.CATEGORY_NAMES.index(c) for c in SHOWN_CATEGORIES)

Rows = list[list[float | int | str | bool | None]]


def full_counts(c: Core) -> eng.BlockCounts:
    """The full UNet per block and category (one step, one image)."""
    return eng.count_blocks(c.table, latent_side=float(c.latent_side))


def code_counts(r: PruningResolved, c: Core) -> eng.BlockCounts:
    """Each code's UNet per block and category (one step, one image)."""
    return eng.count_blocks(c.table, latent_side=float(c.latent_side), keep=r.code_keep)


def code_labels(r: PruningResolved, c: Core) -> list[str]:
    ratio = np.asarray(c.code_ratio)
    return [f"{n} (R={ratio[k]:.2f})" for k, n in enumerate(r.code_names)]


def block_table(c: Core, full: eng.BlockCounts) -> Table:
    rows: Rows = []
    for b, name in enumerate(c.table.block_names):
        macs = full.macs[b]
        gmacs = [float(macs[i]) / 1e9 for i in CATEGORY_INDEX]
        rows.append([name, float(full.params[b].sum()), *gmacs, float(macs.sum()) / 1e9])
    return Table(
        key="unet_blocks",
        title="Full UNet per block (one denoising step, one image)",
        columns=[
            Column(key="block", label="block"),
            Column(key="params", label="parameters", unit="count"),
            *(Column(key=f"{cat}_gmacs", label=MAC_CATEGORY_LABELS[cat], unit="GMAC") for cat in SHOWN_CATEGORIES),
            Column(key="total_gmacs", label="total", unit="GMAC"),
        ],
        rows=rows,
    )


def code_table(r: PruningResolved, c: Core, per_code: eng.BlockCounts) -> Table:
    # every code at once, each sum over one contiguous row as each code's own sum was
    n_codes = len(r.code_names)
    mean_keep = np.ascontiguousarray(np.swapaxes(r.code_keep, -1, -2)).mean(axis=-1).tolist()
    params = np.ascontiguousarray(per_code.params).reshape(n_codes, -1).sum(axis=-1).tolist()
    macs = per_code.macs[:, :, list(CATEGORY_INDEX)].reshape(n_codes, -1).sum(axis=-1).tolist()
    ratio = np.asarray(c.code_ratio, dtype=np.float64).tolist()
    share = np.asarray(c.routing.code_share, dtype=np.float64).tolist()
    rows: Rows = [
        [name, *mean_keep[k], params[k], macs[k] / 1e9, ratio[k], share[k]] for k, name in enumerate(r.code_names)
    ]
    return Table(
        key="codes",
        title="Architecture codes (R_k counted, not typed in)",
        columns=[
            Column(key="code", label="code"),
            Column(key="channel_keep", label="mean channel keep"),
            Column(key="head_keep", label="mean head keep"),
            Column(key="ffn_keep", label="mean FFN keep"),
            Column(key="params", label="UNet parameters", unit="count"),
            Column(key="gmacs", label="UNet MACs per step (all)", unit="GMAC"),
            Column(key="ratio", label="R_k"),
            Column(key="share", label="share of prompts"),
        ],
        rows=rows,
    )


def routing_shares(r: PruningResolved, c: Core) -> list[list[float]]:
    """Row i, column k: the share of category i's prompts routed to code k."""
    plan = c.routing.plan.plan
    return [[float(v) for v in plan[i] / r.category_share[i]] for i in range(len(r.category_names))]


def routing_table(r: PruningResolved, shares: list[list[float]]) -> Table:
    return Table(
        key="routing",
        title="Share of each prompt category routed to each code",
        columns=[Column(key="category", label="category"), *(Column(key=n, label=n) for n in r.code_names)],
        rows=[[cat, *shares[i]] for i, cat in enumerate(r.category_names)],
    )


def throughput_by_batch(r: PruningResolved, grid: Core) -> dict[str, list[float]]:
    """Images/s per strategy over the chart's batch sizes (`grid` was computed at those batches)."""
    s = grid.serving
    batches = list(r.figure_batch_sizes)
    return {
        "static": [float(v) for v in s.static_images_per_s],
        "dynamic": [float(v) for v in s.dynamic_images_per_s],
        "aptp": [float(v) for v in s.aptp_images_per_s],
        "full": [float(b / s.full_latency_s[i]) for i, b in enumerate(batches)],
    }


def throughput_table(r: PruningResolved, tput: dict[str, list[float]]) -> Table:
    rows: Rows = [
        [b, tput["static"][i], tput["dynamic"][i], tput["aptp"][i], tput["full"][i]]
        for i, b in enumerate(r.figure_batch_sizes)
    ]
    return Table(
        key="throughput",
        title="Throughput vs batch size",
        columns=[
            Column(key="batch", label="prompts per batch"),
            Column(key="static", label="static", unit="images/s"),
            Column(key="dynamic", label="dynamic", unit="images/s"),
            Column(key="aptp", label="APTP", unit="images/s"),
            Column(key="full", label="unpruned", unit="images/s"),
        ],
        rows=rows,
    )


# -- the engine in a published setting -------------------------------------------------------------


def unet_macs(pipeline: DiffusionPipelineSpec, image_side_px: float, *, with_attention: bool) -> float:
    """Full UNet MACs per denoising step and image (this counter: attention matmuls counted once)."""
    table = eng.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings)
    side = image_side_px / pipeline.unet.vae_scale_factor
    return float(eng.total_macs(table, latent_side=side, include_attention_matmuls=with_attention))


def unet_macs_by_category(pipeline: DiffusionPipelineSpec, image_side_px: float) -> dict[str, float]:
    """Full UNet MACs per step and image by category (conv, linear, self_attention, ...)."""
    table = eng.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings)
    side = image_side_px / pipeline.unet.vae_scale_factor
    macs = eng.count_blocks(table, latent_side=side).macs.sum(axis=0)
    return dict(zip(eng.CATEGORY_NAMES, (float(m) for m in macs), strict=True))


def macs_self_attention_twice(pipeline: DiffusionPipelineSpec, image_side_px: float) -> float:
    """UNet MACs per step with the self-attention matmuls counted twice (APTP's op counter convention)."""
    by_category = unet_macs_by_category(pipeline, image_side_px)
    return (
        by_category["conv"]
        + by_category["linear"]
        + 2.0 * by_category["self_attention"]
        + by_category["cross_attention"]
    )


def unet_params(pipeline: DiffusionPipelineSpec) -> float:
    table = eng.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings)
    return float(eng.count_blocks(table, latent_side=1.0).params.sum())


def text_encoder_params(pipeline: DiffusionPipelineSpec) -> float:
    table = eng.text_encoder_layer_table(pipeline.text_encoder)
    return float(eng.count_layers(table, latent_side=0.0).params.sum())


def latencies_at_ratios(
    pipeline: DiffusionPipelineSpec,
    accelerator: AcceleratorSpec,
    *,
    resource_ratios: Any,
    image_side_px: float,
    denoising_steps: float,
    batch: float,
    dtype: str,
) -> dict[str, Any]:
    """The unpruned pipeline's latency and that of one pruned model per resource ratio.

    Each ratio becomes the one uniform keep fraction with that R (engine bisection); all ratios
    are one vectorised call, with classifier-free guidance. Returns the full latency (s), the
    per-ratio latencies (s) and the ratios.
    """
    ratio = np.asarray(resource_ratios, dtype=np.float64)
    keep = eng.uniform_keep_for_ratio(pipeline, target_ratio=ratio, image_side_px=image_side_px)
    n_prunable = len(eng.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings).prunable_blocks)
    row_keep = np.broadcast_to(keep[:, None, None], (len(ratio), n_prunable, 3))
    conv_device, attention_device = eng.fp32_math_devices(accelerator) if dtype == "fp32" else (None, None)
    serving = eng.serving_cost(
        pipeline,
        code_keep=np.ones((1, n_prunable, 3)),
        code_share=np.ones(1),
        static_keep=row_keep,
        image_side_px=image_side_px,
        batch=batch,
        denoising_steps=denoising_steps,
        guidance_copies=2.0,
        bytes_per_element=BYTES_PER_ELEMENT[dtype],
        device=Device.from_accelerator(accelerator, dtype),
        conv_device=conv_device,
        attention_device=attention_device,
    )
    return {
        "full_latency_s": float(np.asarray(serving.full_latency_s).reshape(-1)[0]),
        "row_latency_s": np.asarray(serving.static_latency_s, dtype=np.float64),
        "row_resource_ratio": ratio,
    }


def pipeline_parts_s(
    pipeline: DiffusionPipelineSpec,
    *,
    image_side_px: float,
    batch: float,
    guidance_copies: float,
    unet_device: Device,
    other_device: Device,
    bytes_per_element: float = 2.0,
    unet_channels_last: bool = False,
) -> dict[str, float]:
    """One UNet step (at guidance_copies x batch), the text encoder and the VAE decoder, priced op by op.

    The UNet may run under another stack than the text encoder and VAE (diffusers compiles the UNet alone).
    """
    unet = eng.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings)
    text = eng.text_encoder_layer_table(pipeline.text_encoder)
    vae = eng.vae_decoder_layer_table(pipeline.vae_decoder)
    side = image_side_px / pipeline.unet.vae_scale_factor

    def time_s(table: eng.LayerTable, n: float, side_: float, device: Device, channels_last: bool = False) -> float:
        counts = eng.count_layers(table, latent_side=side_)
        return float(
            eng.network_time_s(
                table, counts, batch=n, bytes_per_element=bytes_per_element, device=device, channels_last=channels_last
            )
        )

    return {
        "unet_step_s": time_s(unet, guidance_copies * batch, side, unet_device, unet_channels_last),
        "text_encoder_s": time_s(text, guidance_copies * batch, 0.0, other_device),
        "vae_decoder_s": time_s(vae, batch, side, other_device),
    }
