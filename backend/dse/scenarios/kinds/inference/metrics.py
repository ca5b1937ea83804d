"""Metrics of the inference kind: one declaration each, computed by one engine call."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.engines.inference import PIM_SYSTEMS, InferenceResult, model_shape, run_inference
from dse.engines.transformer import expected_distinct_experts
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.inference.inputs import InferenceResolved, engine_inputs
from dse.specs.common import Num

METRICS: dict[str, MetricSpec] = {
    "throughput_tokens_per_s": MetricSpec(
        label="Decode throughput (all PP batches in flight)",
        unit="tokens/s",
        formula="B / (L/PP * t_layer + t_lm_head): PP batches of B requests in flight, one emits B tokens per stage",
    ),
    "time_per_output_token_s": MetricSpec(
        label="Time per output token (one request)", unit="s", formula="PP * (stage time)"
    ),
    "time_to_first_token_s": MetricSpec(
        label="Time to first token (whole batch's prefill)",
        unit="s",
        formula="L * t_prefill_layer(B, prompt) + t_lm_head: the prefill of all B prompts together",
    ),
    "end_to_end_throughput_tokens_per_s": MetricSpec(
        label="End-to-end throughput (prefill + decode)", unit="tokens/s", formula="B*n_out / (TTFT + n_out*TPOT)"
    ),
    # Mixture of experts, its headline numbers after the throughputs (undefined for a dense model: the
    # dashboard lists undefined metrics last, so a dense model's cards stay as they were).
    "moe_experts_touched_per_step": MetricSpec(
        label="Experts touched per decode step (MoE, per layer)",
        unit="experts",
        formula="D = E * (1 - (1 - k/E)^B): distinct routed experts the batch's B tokens reach (uniform routing)",
    ),
    "moe_expert_bytes_read_per_step": MetricSpec(
        label="Expert weights read per decode step (MoE, per device)",
        unit="bytes",
        formula="L_moe * (D + S) * P_e * w / (TP*PP): the touched routed experts and the S shared ones",
    ),
    "activated_parameters": MetricSpec(
        label="Activated parameters per token (MoE)",
        unit="params",
        formula="N_total - L_moe * (E - k) * P_e: k routed experts per MoE layer, not all E",
    ),
    "layer_time_s": MetricSpec(label="Decode time per layer", unit="s", formula="see the system's schedule"),
    "attention_time_s": MetricSpec(label="Attention time per layer (whole batch)", unit="s"),
    "npu_busy_fraction": MetricSpec(
        label="NPU/GPU busy fraction", unit="", display="percent", formula="matrix-unit time / stage time"
    ),
    "pim_busy_fraction": MetricSpec(
        label="PIM busy fraction", unit="", display="percent", formula="PIM GEMV time / stage time"
    ),
    "sub_batch_fraction": MetricSpec(
        label="First sub-batch share (NeuPIMs)", unit="", display="percent", formula="B1 / B"
    ),
    "weights_bytes_per_device": MetricSpec(label="Weights per device", unit="bytes", formula="N * w / (TP*PP)"),
    "kv_cache_bytes_per_device": MetricSpec(
        label="KV cache per device", unit="bytes", formula="B * s * 2*L*a_kv*d_h*w_kv / TP"
    ),
    "memory_footprint_bytes_per_device": MetricSpec(label="Memory footprint per device", unit="bytes"),
    "max_batch_that_fits": MetricSpec(
        label="Largest batch that fits (B; PP x B requests in flight)",
        unit="requests",
        formula="floor((capacity - reserve - weights) / KV per request); reserve on a GPU 1.5 GiB + 5% of capacity",
    ),
    "fits": MetricSpec(label="Fits in memory", unit="", boolean=True),
    "moe_expert_bytes_stored": MetricSpec(
        label="Expert weights stored (MoE, all experts, per device)",
        unit="bytes",
        formula="L_moe * (E + S) * P_e * w / (TP*PP)",
    ),
    "total_parameters": MetricSpec(label="Parameters stored (MoE, every expert)", unit="params", formula="N_total"),
    "moe_experts_per_device": MetricSpec(
        label="Routed experts held per device (MoE, per layer)",
        unit="experts",
        formula="E / EP, each at EP/TP of its columns (EP = 1: every expert at 1/TP)",
    ),
    "moe_routed_tokens_per_step": MetricSpec(
        label="Token-expert pairs of the busiest device per decode step (MoE, per layer)",
        unit="tokens",
        formula="DP * B * k * imbalance / EP (EP = 1: every device sees all B * k, at 1/TP of the columns)",
    ),
    # Replica-wide numbers (data-parallel attention multiplies the requests and the GPUs).
    "devices": MetricSpec(label="GPUs per replica", unit="devices", formula="TP * PP * DP"),
    "throughput_tokens_per_s_per_device": MetricSpec(
        label="Decode throughput per GPU", unit="tokens/s", formula="DP * B / stage time / (TP * PP * DP)"
    ),
    "prefill_throughput_tokens_per_s": MetricSpec(
        label="Prefill throughput (whole batch's prompts)", unit="tokens/s", formula="DP * B * prompt / TTFT"
    ),
    "expert_all_to_all_time_s": MetricSpec(
        label="Expert dispatch + combine per decode layer (DP attention, whole)",
        unit="s",
        formula="alpha + max(NVLink bytes / (f_nvl B_nvl), network bytes / (f_net B_net)), each of the two, "
        "DeepEP-calibrated; two-batch overlap hides what the other micro-batch's compute covers",
    ),
}

#: The mixture-of-experts metrics (NaN, i.e. undefined, for a dense model).
MOE_METRICS: tuple[str, ...] = (
    "moe_experts_touched_per_step",
    "moe_expert_bytes_read_per_step",
    "moe_expert_bytes_stored",
    "activated_parameters",
    "total_parameters",
    "moe_experts_per_device",
    "moe_routed_tokens_per_step",
)


#: Metrics of the PIM units (NaN, i.e. undefined, on a system without PIM: not a PIM kept idle).
PIM_METRICS: tuple[str, ...] = ("pim_busy_fraction",)
#: Metrics of NeuPIMs' sub-batch interleaving (NaN on every other system).
NEUPIMS_METRICS: tuple[str, ...] = ("sub_batch_fraction",)


def metric_values(result: InferenceResult, system: str) -> dict[str, Any]:
    """Each engine metric from the engine's result (the engine names its fields like the metrics); the PIM
    metrics undefined where `system` has no PIM, the sub-batch share where it is not NeuPIMs."""
    values = {key: getattr(result, key) for key in METRICS if key not in MOE_METRICS}
    not_applicable = (() if system in PIM_SYSTEMS else PIM_METRICS) + (() if system == "neupims" else NEUPIMS_METRICS)
    return {**values, **dict.fromkeys(not_applicable, math.nan)}


@dataclass(frozen=True)
class MoEStep:
    """What one decode step of a batch of B does with the experts (broadcast over the inputs)."""

    experts_touched: Num  # D, routed, per MoE layer
    expert_params: Num  # P_e, one expert of one layer
    expert_bytes_read_per_device: Num
    expert_bytes_stored_per_device: Num
    activated_parameters: Num
    total_parameters: Num
    experts_per_device: Num  # E / EP routed experts, per MoE layer
    routed_tokens_per_device: Num  # the busiest device's token-expert pairs, per MoE layer


def moe_step(r: InferenceResolved, batch: Num | None = None) -> MoEStep | None:
    """The experts one decode step of `batch` tokens (default: the scenario's batch) touches and reads
    (dse.engines.transformer.expected_distinct_experts, as the decode ops price them); None for a dense model."""
    shape = model_shape(r.model)
    moe = shape.moe
    if moe is None:
        return None
    params = shape.parameters()
    moe_layers = shape.num_layers - moe.dense_layers
    # The FFN parameters less the dense layers' are the MoE layers' E + S experts.
    dense_layer_ffn = dataclasses.replace(shape, moe=None).parameters().layer_ffn
    experts = params.ffn - moe.dense_layers * dense_layer_ffn
    expert = experts / (moe_layers * (moe.num_experts + moe.shared_experts))
    dp = r.attention_data_parallel  # the routed experts serve every DP rank's tokens, spread over their GPUs
    tokens = (r.batch_size if batch is None else batch) * dp
    touched = expected_distinct_experts(moe.num_experts, moe.experts_per_token, tokens)
    per_device = moe_layers * expert * r.weight_bytes / (r.tensor_parallel * r.pipeline_parallel)
    return MoEStep(
        experts_touched=touched,
        expert_params=expert,
        expert_bytes_read_per_device=(touched / dp + moe.shared_experts) * per_device,
        expert_bytes_stored_per_device=(moe.num_experts / dp + moe.shared_experts) * per_device,
        activated_parameters=params.activated,
        total_parameters=params.total,
        experts_per_device=moe.num_experts / r.expert_parallel,
        routed_tokens_per_device=tokens * (moe.experts_per_token * r.expert_load_imbalance / r.expert_parallel),
    )


def moe_values(r: InferenceResolved) -> dict[str, Any]:
    """The mixture-of-experts metrics (NaN for a dense model: undefined)."""
    step = moe_step(r)
    if step is None:
        return dict.fromkeys(MOE_METRICS, math.nan)
    return {
        "moe_experts_touched_per_step": step.experts_touched,
        "moe_expert_bytes_read_per_step": step.expert_bytes_read_per_device,
        "moe_expert_bytes_stored": step.expert_bytes_stored_per_device,
        "activated_parameters": step.activated_parameters,
        "total_parameters": step.total_parameters,
        "moe_experts_per_device": step.experts_per_device,
        "moe_routed_tokens_per_step": step.routed_tokens_per_device,
    }


def moe_terms(r: InferenceResolved) -> dict[str, dict[str, float | str]]:
    """The symbols of the mixture-of-experts formulas (none for a dense model)."""
    llm = r.model
    step = moe_step(r)
    if step is None or not llm.is_moe:
        return {}
    terms: dict[str, float | str] = {
        "E": float(llm.num_experts),
        "k": float(llm.experts_per_token),
        "S": float(llm.num_shared_experts),
        "L_moe": float(llm.moe_layers),
        "P_e": float(np.asarray(step.expert_params)),
        "w": r.weight_bytes,
        "EP": r.expert_parallel,
        "imbalance": r.expert_load_imbalance,
    }
    return dict.fromkeys(MOE_METRICS, terms)


def compute(resolved: InferenceResolved) -> dict[str, Any]:
    """Every metric, vectorised over the resolved tree's arrays (one engine call)."""
    return {**metric_values(run_inference(**engine_inputs(resolved)), resolved.system), **moe_values(resolved)}


def formula_terms(r: InferenceResolved) -> dict[str, float | str]:
    """The symbols every metric's formula shows."""
    return {
        "B": r.batch_size,
        "DP": r.attention_data_parallel,
        "L": float(r.model.num_layers),
        "TP": r.tensor_parallel,
        "PP": r.pipeline_parallel,
        "system": r.system,
        "software_stack": r.software_stack.id if r.software_stack is not None else "none (roofline)",
    }
