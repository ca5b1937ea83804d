"""Every metric of a training scenario, declared once (label, unit, formula), and `compute`."""

from __future__ import annotations

from typing import Any

from dse.engines.training import OUT_OF_MEMORY, REASONS, PlanEvaluation, evaluate_plans
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.training.inputs import ResolvedTraining, engine_inputs

#: In the order the answer lists them.
METRICS: dict[str, MetricSpec] = {
    "iteration_time_s": MetricSpec(
        label="Iteration time",
        unit="s",
        formula="M*t_stage,max + bubble + DP sync (exposed) + optimizer step",
    ),
    "tokens_per_s": MetricSpec(label="Throughput", unit="tokens/s", formula="B*s / T_iter"),
    "model_flops_utilization": MetricSpec(
        label="Model FLOPs utilisation",
        display="percent",
        unit="fraction",
        formula="B*s*(6N + 12*L*h*s) / (T_iter * GPUs * peak); peak: the dense bf16/fp16 peak, also for fp8 "
        "training (its attention and element-wise work stay in bf16)",
        band="rate",  # a share of the peak rate: its validation error is the iteration time's
    ),
    "achieved_flops_per_gpu": MetricSpec(
        label="Achieved FLOP/s per GPU",
        unit="FLOP/s",
        formula="executed FLOP (with recomputation) / (T_iter * GPUs); Narayanan et al. 2021",
    ),
    "memory_total_bytes": MetricSpec(
        label="Peak memory per GPU", unit="bytes", formula="states + activations + buffers"
    ),
    "memory_headroom_bytes": MetricSpec(
        label="Memory headroom", unit="bytes", formula="GPU memory - reserve - peak memory"
    ),
    "fits": MetricSpec(
        label="Fits in GPU memory",
        unit="",
        formula="peak memory <= GPU memory - reserve (1.5 GiB + 5% for CUDA context, NCCL buffers, fragmentation)",
        boolean=True,
    ),
    "bubble_fraction": MetricSpec(
        label="Bubble fraction", display="percent", unit="fraction", formula="(p-1)/(v*M + p-1) for equal stages"
    ),
    "micro_batches": MetricSpec(label="Micro-batches per replica", unit="count", formula="B / (b * dp)"),
    "memory_weights_bytes": MetricSpec(label="Weights", unit="bytes", formula="2 bytes/param, /dp with ZeRO-3"),
    "memory_gradients_bytes": MetricSpec(label="Gradients", unit="bytes", formula="2 bytes/param, /dp with ZeRO-2+"),
    "memory_optimizer_bytes": MetricSpec(
        label="Optimizer state", unit="bytes", formula="12 bytes/param, /dp with ZeRO-1+"
    ),
    "memory_activations_bytes": MetricSpec(
        label="Activations", unit="bytes", formula="in-flight micro-batches x layers/stage x Korthikanti bytes/layer"
    ),
    "memory_buffers_bytes": MetricSpec(label="Buffers", unit="bytes", formula="logits, masks, comm and ZeRO-3 buffers"),
    "memory_offloaded_bytes": MetricSpec(label="Activations on SSD", unit="bytes", formula="SSDTrain rule"),
    "time_forward_s": MetricSpec(label="Forward", unit="s"),
    "time_backward_s": MetricSpec(label="Backward", unit="s"),
    "time_recompute_s": MetricSpec(label="Recomputation", unit="s"),
    "time_tensor_parallel_s": MetricSpec(label="TP collectives", unit="s"),
    "time_sequence_parallel_s": MetricSpec(label="Sequence-parallel collectives", unit="s"),
    "time_context_parallel_s": MetricSpec(
        label="Context-parallel K/V exchange (exposed)",
        unit="s",
        formula="ring P2P: (CP-1) x max(0, send - attention step), backward with dK/dV plus the last hop home; "
        "all-gather: the gather, and in backward gather + reduce-scatter",
    ),
    "time_pipeline_send_s": MetricSpec(label="Pipeline sends", unit="s"),
    "time_zero_gather_s": MetricSpec(label="ZeRO-3 gathers (exposed)", unit="s"),
    "time_offload_stall_s": MetricSpec(label="SSD stall", unit="s"),
    "time_bubble_s": MetricSpec(label="Pipeline bubble", unit="s", formula="(p-1) * t_stage / v"),
    "time_data_parallel_s": MetricSpec(label="DP gradient sync (exposed)", unit="s"),
    "time_optimizer_s": MetricSpec(label="Optimizer step", unit="s", formula="28 bytes/param / memory bandwidth"),
    "time_expert_all_to_all_s": MetricSpec(
        label="EP all-to-alls (MoE)",
        unit="s",
        formula="M x MoE layers/stage x (4 + 2 if full recompute) x all-to-all of 2*(T/t)*k*load*h bytes over EP ranks",
    ),
    "memory_expert_states_bytes": MetricSpec(
        label="Expert states (MoE)",
        unit="bytes",
        formula="routed experts/(TP*EP) x (2 + 2 + 12) bytes, ZeRO over DP*CP/EP (in the memory parts)",
    ),
    "expert_all_to_all_bytes_per_layer": MetricSpec(
        label="EP all-to-all bytes per MoE layer", unit="bytes", formula="4 x (EP-1)/EP x 2*(T/t)*k*load*h"
    ),
    "offloaded_layers": MetricSpec(label="Layers offloaded per stage", unit="count"),
    "peak_stage": MetricSpec(
        label="Stage with the peak memory",
        unit="index",
        formula="0 the first, 1 the second (uneven stages), p-1 the last",
    ),
    "reasons": MetricSpec(
        label="Why the plan cannot run",
        unit="bitmask",
        formula="0 = valid",
        codes={r.bit: r.message for r in (*REASONS.values(), OUT_OF_MEMORY)},
    ),
}

#: The parts of the iteration time and of the peak memory, in the order of their tables and charts.
TIME_PARTS: tuple[str, ...] = (
    "time_forward_s",
    "time_backward_s",
    "time_recompute_s",
    "time_tensor_parallel_s",
    "time_sequence_parallel_s",
    "time_context_parallel_s",
    "time_pipeline_send_s",
    "time_zero_gather_s",
    "time_offload_stall_s",
    "time_bubble_s",
    "time_data_parallel_s",
    "time_optimizer_s",
    "time_expert_all_to_all_s",
)
MEMORY_PARTS: tuple[str, ...] = (
    "memory_weights_bytes",
    "memory_gradients_bytes",
    "memory_optimizer_bytes",
    "memory_activations_bytes",
    "memory_buffers_bytes",
)


def evaluation(resolved: ResolvedTraining) -> PlanEvaluation:
    """The engine's answer for the scenario (arrays in a sweep)."""
    model, cluster, plan = engine_inputs(resolved)
    return evaluate_plans(model=model, cluster=cluster, plan=plan)


def metric_values(result: PlanEvaluation) -> dict[str, Any]:
    """Every declared metric from the engine's answer (yes/no and bit masks as numbers, for sweeps)."""
    values: dict[str, Any] = {k: getattr(result, k) for k in METRICS if k not in ("fits", "reasons")}
    values["fits"] = result.fits.astype(float)
    values["reasons"] = result.reasons.astype(float)
    return values


def compute(resolved: ResolvedTraining) -> dict[str, Any]:
    return metric_values(evaluation(resolved))


def metric_terms(resolved: ResolvedTraining, f: dict[str, float]) -> dict[str, dict[str, float | str]]:
    """The inputs each metric's formula took, shown beside it."""
    gpus = resolved.cluster.gpus
    return {
        "iteration_time_s": {"M": f["micro_batches"], "bubble_s": f["time_bubble_s"]},
        "tokens_per_s": {"B": resolved.global_batch_size, "s": resolved.sequence_length_tokens},
        "model_flops_utilization": {"GPUs": gpus},
        "achieved_flops_per_gpu": {"GPUs": gpus},
        "memory_total_bytes": {"capacity_bytes": resolved.cluster.accelerator.memory_capacity_bytes},
        "bubble_fraction": {"p": resolved.pipeline_parallel, "v": resolved.virtual_stages},
    }
