"""Every metric of a plan search, declared once, and `compute` (one search per sweep point)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dse.engines.plan_search import SearchResult
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.plan_search.inputs import ResolvedPlanSearch
from dse.scenarios.kinds.plan_search.studies import search

#: Sweep points one request may ask for: each point is a whole search (about a second each).
MAX_SEARCHES_PER_SWEEP = 8

METRICS: dict[str, MetricSpec] = {
    "best_iteration_time_s": MetricSpec(label="Best iteration time", unit="s", formula="min over plans that fit"),
    "best_tokens_per_s": MetricSpec(label="Best throughput", unit="tokens/s", formula="B*s / T_best"),
    "best_model_flops_utilization": MetricSpec(
        label="MFU of the best plan",
        display="percent",
        unit="fraction",
        formula="B*s*(6N + 12*L*h*s) / (T * GPUs * peak)",
        band="rate",  # a share of the peak rate: its validation error is the iteration time's
    ),
    "best_memory_total_bytes": MetricSpec(label="Peak memory per GPU of the best plan", unit="bytes"),
    "best_gpus": MetricSpec(label="GPUs used by the best plan", unit="GPUs"),
    "candidates": MetricSpec(label="Candidate plans judged", unit="plans", formula="layouts x inner axes"),
    "valid_plans": MetricSpec(label="Well-formed plans", unit="plans", formula="no structural reason"),
    "fitting_plans": MetricSpec(label="Plans that fit", unit="plans", formula="valid and peak memory <= GPU memory"),
    "pareto_plans": MetricSpec(label="Pareto-optimal plans", unit="plans", formula="(time, memory, GPUs) minimised"),
}


def summary(result: SearchResult) -> dict[str, float]:
    """Every declared metric of one search (NaN for the best plan's when none fits)."""
    e = result.top.evaluation
    has = len(result.top) > 0
    return {
        "best_iteration_time_s": float(e.iteration_time_s[0]) if has else np.nan,
        "best_tokens_per_s": float(e.tokens_per_s[0]) if has else np.nan,
        "best_model_flops_utilization": float(e.model_flops_utilization[0]) if has else np.nan,
        "best_memory_total_bytes": float(e.memory_total_bytes[0]) if has else np.nan,
        "best_gpus": float(result.top.gpus[0]) if has else np.nan,
        "candidates": float(result.candidates),
        "valid_plans": float(result.valid),
        "fitting_plans": float(result.fitting),
        "pareto_plans": float(len(result.pareto)),
    }


def metric_terms(resolved: ResolvedPlanSearch, result: SearchResult) -> dict[str, dict[str, float | str]]:
    """The inputs each metric's formula took, shown beside it."""
    return {
        "best_iteration_time_s": {"plans_that_fit": float(result.fitting)},
        "best_tokens_per_s": {"B": resolved.global_batch_size, "s": resolved.sequence_length_tokens},
        "best_memory_total_bytes": {"capacity_bytes": resolved.cluster.accelerator.memory_capacity_bytes},
        "best_gpus": {"cluster_gpus": resolved.cluster.gpus},
        "candidates": {"engine_calls": float(result.engine_calls)},
    }


def compute(resolved: ResolvedPlanSearch) -> dict[str, Any]:
    """A search per design point: a sweep (over the batch, the nodes, ...) runs one search per point."""
    leaves = _numeric_leaves(resolved)
    shape = np.broadcast_shapes(*(np.shape(v) for v in leaves.values())) if leaves else ()
    points = int(np.prod(shape)) if shape else 1
    if points > MAX_SEARCHES_PER_SWEEP:
        raise ValueError(f"{points} searches requested; at most {MAX_SEARCHES_PER_SWEEP} per sweep")
    out = {key: np.full(shape, np.nan) for key in METRICS}
    for index in np.ndindex(*shape) if shape else [()]:  # a loop over searches, each millions of plans
        point = _pick_point(resolved, leaves, index, shape)
        for key, value in summary(search(point)).items():
            out[key][index] = value
    return out


def _numeric_leaves(resolved: Any, prefix: str = "") -> dict[str, Any]:
    """Paths of the resolved tree that a sweep made arrays."""
    leaves: dict[str, Any] = {}
    if not dataclasses.is_dataclass(resolved):
        return leaves
    for f in dataclasses.fields(resolved):
        value = getattr(resolved, f.name)
        if isinstance(value, np.ndarray):
            leaves[prefix + f.name] = value
        elif dataclasses.is_dataclass(value):
            leaves.update(_numeric_leaves(value, f"{prefix}{f.name}."))
    return leaves


def _pick_point(
    resolved: ResolvedPlanSearch, leaves: dict[str, Any], index: tuple[int, ...], shape: tuple[int, ...]
) -> ResolvedPlanSearch:
    """The resolved tree at one sweep point (every swept leaf back to a scalar)."""
    from dse.scenarios.sweep import set_path

    point: Any = resolved
    for path, value in leaves.items():
        point = set_path(point, path, np.broadcast_to(np.asarray(value), shape)[index].item())
    result: ResolvedPlanSearch = point
    return result
