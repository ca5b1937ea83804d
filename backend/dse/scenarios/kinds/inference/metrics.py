"""Metrics of the inference kind: one declaration each, computed by one engine call."""

from __future__ import annotations

from typing import Any

from dse.engines.inference import InferenceResult, run_inference
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.inference.inputs import InferenceResolved, engine_inputs

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
        formula="floor((capacity - weights) / KV per request)",
    ),
    "fits": MetricSpec(label="Fits in memory", unit="", boolean=True),
}


def metric_values(result: InferenceResult) -> dict[str, Any]:
    """Each declared metric from the engine's result (the engine names its fields like the metrics)."""
    return {key: getattr(result, key) for key in METRICS}


def compute(resolved: InferenceResolved) -> dict[str, Any]:
    """Every metric, vectorised over the resolved tree's arrays (one engine call)."""
    return metric_values(run_inference(**engine_inputs(resolved)))


def formula_terms(r: InferenceResolved) -> dict[str, float | str]:
    """The symbols every metric's formula shows."""
    return {
        "B": r.batch_size,
        "L": float(r.model.num_layers),
        "TP": r.tensor_parallel,
        "PP": r.pipeline_parallel,
        "system": r.system,
        "software_stack": r.software_stack.id if r.software_stack is not None else "none (roofline)",
    }
