"""Metrics of `temporal_batching`: every declaration (label, unit, formula), the per-event model, `compute`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.engines.device import Device
from dse.engines.temporal_batching import (
    EventCost,
    batch_speedup,
    dataset_classes,
    discontinuity_rate,
    event_time_s,
    fixed_cost_for_speedup,
    largest_batch_under,
    parallel_events,
    temporal_batch_time,
    tgn_event_cost,
    top_node_share,
)
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.temporal_batching.inputs import TemporalBatchingResolved, require_scalar_structure
from dse.scenarios.kinds.temporal_batching.published import PRES_PUBLISHED_SPEEDUP
from dse.specs.common import Num
from dse.specs.hardware import BYTES_PER_ELEMENT
from dse.specs.workloads import DegreeSideSpec

METRICS: dict[str, MetricSpec] = {
    "events_per_s": MetricSpec(
        label="Training throughput", unit="events/s", formula="b / (t_fixed + t_event * max(b, P))"
    ),
    "batch_s": MetricSpec(label="Time per batch", unit="s", formula="t_fixed + t_event * max(b, P)"),
    "epoch_s": MetricSpec(label="Epoch time", unit="s", formula="ceil(E_train / b) * t_batch"),
    "batches_per_epoch": MetricSpec(label="Batches per epoch", unit="", formula="ceil(E_train / b)"),
    "discontinuity_rate": MetricSpec(
        label="Temporal-discontinuity rate",
        unit="",
        display="percent",
        formula="1 - (1/b) * sum_uv w_uv (1 - r_uv^b) / (1 - r_uv)",
    ),
    "event_time_us": MetricSpec(
        label="Per-event training time", unit="µs", formula="max(FLOP_e / (peak * eta_c), bytes_e / (BW * eta_m))"
    ),
    "parallel_events": MetricSpec(
        label="Events that fill the accelerator", unit="events", formula="resident threads / elements per event"
    ),
    "fill_fraction": MetricSpec(label="Accelerator fill", unit="", display="percent", formula="min(1, b / P)"),
    "pres_batch_events": MetricSpec(label="Batch PRES allows", unit="events", formula="k * b_baseline"),
    "pres_speedup": MetricSpec(
        label="Speed-up of the PRES batch", unit="x", formula="throughput(k * b_baseline) / throughput(b_baseline)"
    ),
    "baseline_discontinuity_rate": MetricSpec(
        label="Discontinuity at the baseline batch", unit="", display="percent", formula="rate(b_baseline)"
    ),
    "pres_discontinuity_rate": MetricSpec(
        label="Discontinuity at the PRES batch", unit="", display="percent", formula="rate(k * b_baseline)"
    ),
    "implied_fixed_cost_ms": MetricSpec(
        label="Per-batch cost that gives the paper's 3.4x",
        unit="ms",
        formula="(S * t_v(k b) - k * t_v(b)) / (k - S), t_v(b) = t_event * max(b, P)",
    ),
    "largest_batch_under_threshold": MetricSpec(
        label="Largest batch under the discontinuity threshold",
        unit="events",
        formula="max b such that rate(b) <= threshold",
    ),
    "events_per_s_at_threshold_batch": MetricSpec(
        label="Throughput at that batch", unit="events/s", formula="b* / (t_fixed + t_event * max(b*, P))"
    ),
}


@dataclass(frozen=True)
class EventModel:
    """One event's training work, its time on the device and the events that fill the device."""

    cost: EventCost
    time_s: Num
    parallel_events: Num


def device(r: TemporalBatchingResolved) -> Device:
    return Device.from_accelerator(r.accelerator, r.compute_dtype)


def event_model(r: TemporalBatchingResolved) -> EventModel:
    cost = tgn_event_cost(
        memory_dim=r.memory_dim,
        embedding_dim=r.embedding_dim,
        time_dim=r.time_dim,
        edge_feature_dim=r.dataset.edge_feature_dim,
        neighbors=r.neighbors,
        bytes_per_element=BYTES_PER_ELEMENT[r.compute_dtype],
    )
    return EventModel(
        cost=cost,
        time_s=event_time_s(cost, device(r)),
        parallel_events=parallel_events(resident_threads=r.resident_threads, elements_per_event=cost.elements),
    )


def train_events(r: TemporalBatchingResolved) -> Any:
    """Events of one training epoch: the dataset's events times the training share."""
    return r.dataset.events * r.train_fraction


def compute(r: TemporalBatchingResolved) -> dict[str, Any]:
    """Every metric, vectorised over the resolved tree's arrays (the degree law and widths stay scalars)."""
    require_scalar_structure(r)
    event = event_model(r)
    timing_args: dict[str, Any] = {
        "events": train_events(r),
        "fixed_cost_per_batch_s": r.fixed_cost_per_batch_s,
        "event_time_s": event.time_s,
        "parallel_events": event.parallel_events,
    }
    timing = temporal_batch_time(batch_events=r.temporal_batch_events, **timing_args)
    source, destination = dataset_classes(r.dataset, exponent=r.zipf_exponent_override)
    pres = np.asarray(r.baseline_batch_events, dtype=np.float64) * r.pres_batch_factor
    speedup = batch_speedup(
        batch_events=r.baseline_batch_events,
        factor=r.pres_batch_factor,
        fixed_cost_per_batch_s=r.fixed_cost_per_batch_s,
        event_time_s=event.time_s,
        parallel_events=event.parallel_events,
    )
    implied = fixed_cost_for_speedup(
        batch_events=r.baseline_batch_events,
        factor=r.pres_batch_factor,
        speedup=PRES_PUBLISHED_SPEEDUP,
        event_time_s=event.time_s,
        parallel_events=event.parallel_events,
    )
    zero = 0.0 * np.asarray(timing.batch_s)
    limit = largest_batch_under(
        threshold=r.max_discontinuity_rate, events=train_events(r), source=source, destination=destination
    )
    limit_rate = temporal_batch_time(batch_events=limit, **timing_args).events_per_s

    def rate(batch: Num) -> Num:
        return discontinuity_rate(batch_events=batch, source=source, destination=destination)

    return {
        "largest_batch_under_threshold": limit + zero,
        "events_per_s_at_threshold_batch": limit_rate + zero,
        "events_per_s": timing.events_per_s,
        "batch_s": timing.batch_s,
        "epoch_s": timing.epoch_s,
        "batches_per_epoch": timing.batches_per_epoch,
        "discontinuity_rate": rate(r.temporal_batch_events),
        "event_time_us": np.asarray(event.time_s) * 1e6 + zero,
        "parallel_events": event.parallel_events + zero,
        "fill_fraction": timing.fill_fraction,
        "pres_batch_events": pres + zero,
        "pres_speedup": speedup + zero,
        "baseline_discontinuity_rate": rate(np.asarray(r.baseline_batch_events, dtype=np.float64)) + zero,
        "pres_discontinuity_rate": rate(pres) + zero,
        "implied_fixed_cost_ms": implied * 1e3 + zero,
    }


def _exponent(side: DegreeSideSpec | None, override: float | None) -> str:
    if side is None:
        return "one node set"
    if side.law == "histogram":
        return "histogram"
    return f"{side.exponent if override is None else override:g}"


def terms(r: TemporalBatchingResolved, values: dict[str, Any]) -> dict[str, dict[str, float | str]]:
    """The inputs each metric's formula took, shown beside it."""
    event = event_model(r)
    rates = device(r)
    source, destination = dataset_classes(r.dataset, exponent=r.zipf_exponent_override)
    b = r.temporal_batch_events
    batch_time: dict[str, float | str] = {
        "b": b,
        "t_fixed": r.fixed_cost_per_batch_s,
        "t_event": float(event.time_s),
        "P": float(event.parallel_events),
    }
    epoch: dict[str, float | str] = {"E_train": train_events(r), "b": b}
    return {
        "events_per_s": batch_time,
        "batch_s": batch_time,
        "epoch_s": epoch,
        "batches_per_epoch": epoch,
        "discontinuity_rate": {
            "b": b,
            "source_exponent": _exponent(r.dataset.source_side, r.zipf_exponent_override),
            "destination_exponent": _exponent(r.dataset.destination_side, r.zipf_exponent_override),
            "top_source_share": top_node_share(source),
            "top_destination_share": top_node_share(destination) if destination else top_node_share(source),
            "bipartite": str(r.dataset.bipartite),
        },
        "event_time_us": {
            "FLOP_e": event.cost.flop,
            "bytes_e": event.cost.bytes_moved,
            "peak": float(rates.matrix_flops_per_s),
            "BW": float(rates.memory_bandwidth_bytes_per_s),
        },
        "parallel_events": {"threads": r.resident_threads, "elements": event.cost.elements},
        "fill_fraction": {"b": b, "P": float(event.parallel_events)},
        "pres_batch_events": {"k": r.pres_batch_factor, "b_baseline": r.baseline_batch_events},
        "pres_speedup": {"k": r.pres_batch_factor, "published": PRES_PUBLISHED_SPEEDUP},
        "baseline_discontinuity_rate": {"b": r.baseline_batch_events},
        "pres_discontinuity_rate": {"b": float(np.asarray(values["pres_batch_events"]))},
        "implied_fixed_cost_ms": {"S": PRES_PUBLISHED_SPEEDUP, "k": r.pres_batch_factor},
        "largest_batch_under_threshold": {"threshold": r.max_discontinuity_rate},
        "events_per_s_at_threshold_batch": {"b": float(np.asarray(values["largest_batch_under_threshold"]))},
    }
