"""Metrics of the `pruning` kind: METRICS (each declared once) and `compute`, the vectorised
engine calls a sweep runs once (counter, routing, the static match, serving)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.catalog.calibration import StackDevice, stack_device
from dse.engines import pruning as eng
from dse.engines.device import Device
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.pruning.inputs import PruningResolved

METRICS: dict[str, MetricSpec] = {
    # First: the sweep panel and the home page read the first metric (it varies with every input).
    "aptp_images_per_s": MetricSpec(label="APTP throughput", unit="images/s", formula="B / T_aptp"),
    "unet_params": MetricSpec(label="UNet parameters (full)", unit="count", formula="sum over layers"),
    "unet_macs_per_step": MetricSpec(
        label="UNet MACs per step and image (full)", unit="MAC", formula="sum_l k*f_in*f_out*tokens (+ attention)"
    ),
    "mean_resource_ratio": MetricSpec(
        label="Mean resource ratio", unit="", display="percent", formula="R_bar = sum_k s_k * R_k"
    ),
    "budget_met": MetricSpec(label="Budget met", unit="", formula="R_bar <= budget", boolean=True),
    "mean_capacity_shortfall": MetricSpec(
        label="Mean capacity shortfall", unit="", display="percent", formula="sum_ik P_ik * max(0, q_i - R_k)"
    ),
    "static_keep_fraction": MetricSpec(
        label="Static model's uniform keep fraction",
        unit="",
        display="percent",
        formula="u with R(u) = R_bar (bisection)",
    ),
    "static_images_per_s": MetricSpec(label="Static pruning throughput", unit="images/s", formula="B / T_static"),
    "dynamic_images_per_s": MetricSpec(label="Dynamic pruning throughput", unit="images/s", formula="B / T_dyn"),
    "full_images_per_s": MetricSpec(label="Unpruned throughput", unit="images/s", formula="B / T_full"),
    "aptp_latency_s": MetricSpec(
        label="APTP batch latency",
        unit="s",
        formula="T_text(gB) + N * sum_k d_k T_unet,k(g B s_k / d_k) + T_vae(B), d_k = 1 - (1 - s_k)^B",
    ),
    "static_latency_s": MetricSpec(
        label="Static batch latency", unit="s", formula="T_text(gB) + N * T_unet,static(gB) + T_vae(B)"
    ),
    "dynamic_latency_s": MetricSpec(
        label="Dynamic batch latency", unit="s", formula="B * sum_k s_k (T_text(g) + N * T_unet,k(g) + T_vae(1))"
    ),
    "full_latency_s": MetricSpec(label="Unpruned batch latency", unit="s", formula="T_text + N * T_unet + T_vae"),
    "aptp_latency_cut": MetricSpec(
        label="APTP latency cut vs unpruned", unit="", display="percent", formula="1 - T_aptp / T_full"
    ),
    "aptp_speedup_vs_dynamic": MetricSpec(label="APTP speed-up over dynamic", unit="x", formula="T_dyn / T_aptp"),
    "aptp_speedup_vs_static": MetricSpec(label="APTP speed-up over static", unit="x", formula="T_static / T_aptp"),
}


def unet_table(r: PruningResolved) -> eng.LayerTable:
    return eng.unet_layer_table(r.pipeline.unet, r.pipeline.text_encoder.max_position_embeddings)


def priced_device(r: PruningResolved) -> StackDevice:
    """The accelerator for the scenario's dtype under its software stack, with the resolved peak (a sweep
    may replace it), and which kernel fits priced it."""
    peaks = {**r.accelerator.peak_flops_per_s, r.dtype: r.peak_flops_per_s}
    accelerator = dataclasses.replace(r.accelerator, peak_flops_per_s=peaks)
    return stack_device(r.kernel_fits or {}, accelerator, r.dtype, r.software_stack)


def device(r: PruningResolved) -> Device:
    return priced_device(r).device


@dataclass(frozen=True)
class Core:
    """The engine's answers for one resolved tree at one batch (or a grid of batches)."""

    table: eng.LayerTable
    #: (..., K) resource ratio of each code.
    code_ratio: Any
    routing: eng.Routing
    #: Uniform keep fraction of the static model with the same mean R.
    static_keep: Any
    serving: eng.ServingCost
    full_macs: Any
    latent_side: Any
    #: The device serving was priced on, and which kernel fits priced it.
    priced: StackDevice


@dataclass(frozen=True)
class Counted:
    """What does not depend on the batch: codes counted, prompts routed, the static model matched."""

    table: eng.LayerTable
    code_ratio: Any
    routing: eng.Routing
    static_keep: Any
    full_macs: Any
    latent_side: Any


def counted(r: PruningResolved) -> Counted:
    """Codes counted, prompts routed, the static model matched to the mean R (no batch involved)."""
    table = unet_table(r)
    side_px = np.asarray(r.image_size_px, dtype=np.float64)
    code_ratio = eng.resource_ratio(
        r.pipeline,
        image_side_px=side_px[..., None],
        keep=r.code_keep,
        include_attention_matmuls=r.include_attention_matmuls,
    )
    routing = eng.route_prompts(
        category_share=r.category_share,
        category_capacity=r.category_capacity,
        code_ratio=code_ratio,
        code_capacity=r.code_capacity,
        budget_ratio=r.budget_ratio,
        epsilon=r.sinkhorn_epsilon,
    )
    static_u = eng.uniform_keep_for_ratio(
        r.pipeline,
        target_ratio=routing.mean_ratio,
        image_side_px=side_px,
        include_attention_matmuls=r.include_attention_matmuls,
    )
    latent = eng.latent_side(side_px, r.pipeline.unet)
    full_macs = eng.total_macs(table, latent_side=latent, include_attention_matmuls=r.include_attention_matmuls)
    return Counted(
        table=table,
        code_ratio=code_ratio,
        routing=routing,
        static_keep=static_u,
        full_macs=full_macs,
        latent_side=latent,
    )


def core(r: PruningResolved, batch: Any, done: Counted | None = None) -> Core:
    """Codes counted, prompts routed, the static model matched to the mean R (`done`: already), serving
    priced at `batch`."""
    c = counted(r) if done is None else done
    n_prunable = len(c.table.prunable_blocks)
    static_keep = np.broadcast_to(np.asarray(c.static_keep)[..., None, None], (*np.shape(c.static_keep), n_prunable, 3))
    # fp32 work: convolutions and attention in the math modes PyTorch picks by default (TF32, 3xTF32)
    conv_device, attention_device = eng.fp32_math_devices(r.accelerator) if r.dtype == "fp32" else (None, None)
    priced = priced_device(r)
    serving = eng.serving_cost(
        r.pipeline,
        code_keep=r.code_keep,
        code_share=c.routing.code_share,
        static_keep=static_keep,
        image_side_px=np.asarray(r.image_size_px, dtype=np.float64),
        batch=batch,
        denoising_steps=r.denoising_steps,
        guidance_copies=r.guidance_copies,
        bytes_per_element=r.bytes_per_element,
        device=priced.device,
        unet_channels_last=r.unet_channels_last,
        conv_device=conv_device,
        attention_device=attention_device,
    )
    return Core(
        table=c.table,
        code_ratio=c.code_ratio,
        routing=c.routing,
        static_keep=c.static_keep,
        serving=serving,
        full_macs=c.full_macs,
        latent_side=c.latent_side,
        priced=priced,
    )


def at_batches(c: Core, index: Any) -> Core:
    """`c` with its serving cost taken at `index` of its last (batch) axis: `core` priced at several batches
    at once, one engine call, gives each batch's numbers (element-wise the same as its own call)."""
    s = c.serving
    picked = eng.ServingCost(**{f.name: getattr(s, f.name)[..., index] for f in dataclasses.fields(s)})
    return dataclasses.replace(c, serving=picked)


def compute(r: PruningResolved, done: Counted | None = None) -> dict[str, Any]:
    """Every metric of METRICS, broadcast over the resolved inputs (budget_met as 1.0 / 0.0); `done`:
    the batch-free part already computed."""
    return values_of(r, core(r, r.batch_size, done))


def values_of(r: PruningResolved, c: Core) -> dict[str, Any]:
    """The metrics of `c`, priced at the scenario's batch."""
    s = c.serving
    full_params = eng.count_blocks(c.table, latent_side=c.latent_side).params.sum(axis=(-2, -1))
    return {
        "unet_params": full_params,
        "unet_macs_per_step": c.full_macs,
        "mean_resource_ratio": c.routing.mean_ratio,
        "budget_met": c.routing.budget_met.astype(np.float64),
        "mean_capacity_shortfall": c.routing.mean_shortfall,
        "static_keep_fraction": c.static_keep,
        "aptp_images_per_s": s.aptp_images_per_s,
        "static_images_per_s": s.static_images_per_s,
        "dynamic_images_per_s": s.dynamic_images_per_s,
        "full_images_per_s": np.asarray(r.batch_size) / s.full_latency_s,
        "aptp_latency_s": s.aptp_latency_s,
        "static_latency_s": s.static_latency_s,
        "dynamic_latency_s": s.dynamic_latency_s,
        "full_latency_s": s.full_latency_s,
        "aptp_latency_cut": 1.0 - s.aptp_latency_s / s.full_latency_s,
        "aptp_speedup_vs_dynamic": s.dynamic_latency_s / s.aptp_latency_s,
        "aptp_speedup_vs_static": s.static_latency_s / s.aptp_latency_s,
    }
