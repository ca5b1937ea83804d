"""Metrics of the serving kind: one declaration each; one design point is one main simulation plus the
rate search (see studies). A sweep evaluates its points one after another (bounded count)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from dse.engines.serving import BLOCK_TOKENS, host_busy_s
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingResolved
from dse.scenarios.sweep import set_path

#: Most design points one sweep may ask for (each runs several simulations).
MAX_SWEEP_POINTS = 24

_PCT = ("p50", "p90", "p99")

METRICS: dict[str, MetricSpec] = {
    **{
        f"ttft_{p}_s": MetricSpec(label=f"Time to first token, {p}", unit="s", formula="first token - arrival")
        for p in _PCT
    },
    **{
        f"tpot_{p}_s": MetricSpec(
            label=f"Time per output token, {p}", unit="s", formula="(finish - first token) / (output - 1)"
        )
        for p in _PCT
    },
    **{f"e2e_{p}_s": MetricSpec(label=f"End-to-end latency, {p}", unit="s", formula="finish - arrival") for p in _PCT},
    **{
        f"tbt_{p}_s": MetricSpec(
            label=f"Time between tokens (every token), {p}",
            unit="s",
            formula="over every output token after each request's first: its time minus the previous token's "
            "(Sarathi-Serve's TBT; a prefill that stalls the decodes shows here, not in the per-request mean TPOT)",
        )
        for p in _PCT
    },
    "output_tokens_per_s": MetricSpec(
        label="Output throughput (deployment)", unit="tokens/s", formula="R * output tokens / makespan"
    ),
    "input_tokens_per_s": MetricSpec(
        label="Input throughput (deployment)", unit="tokens/s", formula="R * prompt tokens / makespan"
    ),
    "requests_per_s": MetricSpec(label="Requests served (deployment)", unit="requests/s", formula="R * n / makespan"),
    "goodput_requests_per_s": MetricSpec(
        label="Goodput (deployment)",
        unit="requests/s",
        formula="R * (requests with TTFT <= TTFT_slo and TPOT <= TPOT_slo) / makespan",
    ),
    "meets_slo": MetricSpec(label="Meets both SLOs at the percentile", unit="", boolean=True),
    "max_rate_meeting_slo_per_s": MetricSpec(
        label="Largest arrival rate meeting the SLOs",
        unit="requests/s",
        formula="bisection over the deployment's rate (simulations spanning >= 30 s of arrivals)",
    ),
    "fewest_replicas": MetricSpec(
        label="Fewest replicas for the arrival rate", unit="replicas", formula="ceil(lambda / (lambda_max / R))"
    ),
    "fewest_devices": MetricSpec(
        label="Fewest devices for the arrival rate", unit="devices", formula="replicas * TP * DP"
    ),
    "mean_kv_cache_use": MetricSpec(label="Mean KV-cache use", unit="", formula="time-mean used blocks / blocks"),
    "peak_kv_cache_use": MetricSpec(label="Peak KV-cache use", unit="", formula="max used blocks / blocks"),
    "preemptions": MetricSpec(label="Preemptions (recompute), per replica", unit="requests"),
    "kv_cache_tokens_per_replica": MetricSpec(
        label="KV-cache capacity per replica",
        unit="tokens",
        formula="16 * floor((util * capacity - weights/TP) / (KV bytes per token / TP) / 16)",
    ),
    "weights_bytes_per_device": MetricSpec(label="Weights per device", unit="bytes", formula="N * w / TP"),
    "usd_per_million_input_tokens": MetricSpec(
        label="Cost per million input tokens",
        unit="USD",
        formula="price * TP * makespan/3600 * prefill share of busy time / input tokens * 1e6 (disaggregated: the "
        "prefill pool's devices' share of price * devices * makespan/3600)",
    ),
    "usd_per_million_output_tokens": MetricSpec(
        label="Cost per million output tokens",
        unit="USD",
        formula="price * TP * makespan/3600 * decode share of busy time / output tokens * 1e6 (disaggregated: the "
        "decode pool's)",
    ),
    "devices": MetricSpec(
        label="Devices of the deployment",
        unit="devices",
        formula="R * TP, or disaggregated P * TP_prefill + D * TP_decode",
    ),
    "speculative_tokens_per_step": MetricSpec(
        label="Tokens per decode step (speculative decoding)",
        unit="tokens",
        formula="(1 - alpha^(k+1)) / (1 - alpha) with a draft model (Leviathan et al., ICML'23, eq. 1); else 1",
    ),
    "kv_transfer_p50_s": MetricSpec(
        label="KV-cache transfer, prefill to decode, p50 (disaggregated)",
        unit="s",
        formula="latency + prompt * KV bytes per token / (link bandwidth * min(TP_prefill, TP_decode))",
    ),
    "colocated_max_rate_meeting_slo_per_s": MetricSpec(
        label="Largest rate meeting the SLOs, co-located on the same devices (disaggregated)",
        unit="requests/s",
        formula="the same search for R = devices / TP co-located replicas",
    ),
    "disaggregation_gain": MetricSpec(
        label="Disaggregated over co-located largest rate meeting the SLOs (same devices)",
        unit="",
        formula="max rate disaggregated / max rate co-located",
    ),
    "host_time_share": MetricSpec(
        label="Host share of busy time",
        unit="",
        formula="host seconds on the critical path (the stack's scheduling, input preparation, sampling, output "
        "processing per iteration) / busy seconds, of the (decode) instance simulated",
    ),
    "joules_per_output_token": MetricSpec(
        label="Energy per output token",
        unit="J",
        formula="power * device-seconds busy / output tokens (all energy charged to output tokens; idle not counted)",
    ),
}


def point_values(r: ServingResolved, outcome: studies.Outcome) -> dict[str, Any]:
    """Every declared metric of one design point."""
    s, sim, mem, served = outcome.summary, outcome.sim, outcome.memory, outcome.served
    scale = studies.replica_scale(r)
    blocks = max(mem.kv_capacity_blocks, 1)
    max_rate = outcome.search.max_rate_per_s
    devices = studies.devices(r)
    rate = s.rate_per_s
    if r.disaggregated:  # copies of the whole deployment (both pools at their ratio) the rate needs
        copies = math.ceil(rate / max_rate - 1e-9) if max_rate > 0 else float("nan")
        fewest, fewest_devices = copies * (r.prefill_replicas + r.decode_replicas), copies * devices
    else:
        per_replica = max_rate / r.replicas
        fewest = math.ceil(rate / per_replica - 1e-9) if per_replica > 0 else float("nan")
        fewest_devices = fewest * studies.replica_devices(r)
    cost = r.gpu_hour_usd * served.device_hours
    input_tokens = float(sim.prompt_tokens[np.isfinite(sim.finish_s)].sum())
    output_tokens = float(sim.output_tokens[np.isfinite(sim.finish_s)].sum())
    share = served.input_cost_share
    colocated = outcome.colocated
    colocated_rate = colocated.search.max_rate_per_s if colocated is not None else float("nan")
    values: dict[str, Any] = {}
    for p in _PCT:
        values[f"ttft_{p}_s"] = s.ttft_s[p]
        values[f"tpot_{p}_s"] = s.tpot_s[p]
        values[f"e2e_{p}_s"] = s.e2e_s[p]
        values[f"tbt_{p}_s"] = s.tbt_s[p]
    values.update(
        output_tokens_per_s=scale * s.output_tokens_per_s,
        input_tokens_per_s=scale * s.input_tokens_per_s,
        requests_per_s=scale * s.requests_per_s,
        goodput_requests_per_s=scale * s.goodput_requests_per_s,
        meets_slo=1.0 if s.meets_slo else 0.0,
        max_rate_meeting_slo_per_s=max_rate,
        fewest_replicas=fewest,
        fewest_devices=fewest_devices,
        mean_kv_cache_use=sim.mean_kv_blocks / blocks,
        peak_kv_cache_use=sim.peak_kv_blocks / blocks,
        preemptions=float(sim.preemptions),
        kv_cache_tokens_per_replica=float(mem.kv_capacity_blocks * BLOCK_TOKENS),
        weights_bytes_per_device=mem.weights_bytes_per_device,
        usd_per_million_input_tokens=cost * share / input_tokens * 1e6 if input_tokens else float("nan"),
        usd_per_million_output_tokens=cost * (1 - share) / output_tokens * 1e6 if output_tokens else float("nan"),
        devices=devices,
        speculative_tokens_per_step=studies.tokens_per_step(r),
        kv_transfer_p50_s=float(np.median(served.kv_transfer_s)) if served.kv_transfer_s.size else float("nan"),
        colocated_max_rate_meeting_slo_per_s=colocated_rate,
        disaggregation_gain=max_rate / colocated_rate if colocated_rate > 0 else float("nan"),
        host_time_share=host_busy_s(outcome.table, sim) / sim.busy_s if sim.busy_s > 0 else 0.0,
        joules_per_output_token=r.power_w * served.busy_device_s / output_tokens if output_tokens else float("nan"),
    )
    return values


def compute(r: ServingResolved) -> dict[str, Any]:
    """Every metric; a resolved tree with array leaves (a sweep) is evaluated point by point."""
    arrays = {
        path: np.asarray(value)
        for path, value in _leaves(r).items()
        if isinstance(value, np.ndarray) and value.size > 1
    }
    if not arrays:
        return point_values(r, studies.run(r))
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    if math.prod(shape) > MAX_SWEEP_POINTS:
        raise ValueError(f"a serving sweep runs simulations per point: at most {MAX_SWEEP_POINTS} points")
    grids = {path: np.broadcast_to(a, shape) for path, a in arrays.items()}
    out: dict[str, np.ndarray] = {key: np.full(shape, np.nan) for key in METRICS}
    for index in np.ndindex(*shape):
        point = r
        for path, grid in grids.items():
            point = set_path(point, path, float(grid[index]))
        for key, value in point_values(point, studies.run(point)).items():
            out[key][index] = value
    return out


def _leaves(r: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf that a sweep may have replaced by an array (sweepable_paths skips arrays)."""
    leaves: dict[str, Any] = {}
    for f in dataclasses.fields(r):
        value = getattr(r, f.name)
        path = f"{prefix}{f.name}"
        if isinstance(value, np.ndarray):
            leaves[path] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            leaves.update(_leaves(value, path + "."))
    return leaves


def formula_terms(r: ServingResolved) -> dict[str, float | str]:
    return {
        "R": r.replicas,
        "TP": r.tensor_parallel,
        "DP": r.attention_data_parallel,
        "lambda": r.arrival_rate_per_s,
        "TTFT_slo": r.ttft_slo_s,
        "TPOT_slo": r.tpot_slo_s,
        "percentile": r.slo_percentile,
        "price": r.gpu_hour_usd,
        "power": r.power_w,
        "software_stack": r.software_stack.id if r.software_stack is not None else "none (roofline)",
        "k": r.draft_tokens,
        "alpha": r.acceptance_rate,
        "P": r.prefill_replicas,
        "D": r.decode_replicas,
        "TP_prefill": r.prefill_tensor_parallel,
        "TP_decode": r.decode_tensor_parallel,
    }


__all__ = ["METRICS", "compute", "formula_terms", "point_values"]
