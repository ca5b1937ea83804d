"""A job's grid: numeric axes (any sweepable input, by path) and preset axes (a document field that
holds a catalog preset id), their outer product in row-major order, and its shards.

A shard is a range [start, stop) of flat indices: deterministic, so it can be computed (or retried)
anywhere and gives the same summary. `evaluate_shard` takes plain data only (the document as a dict,
the axes, the range, the summary settings) and returns a plain summary: it is what a Dask worker
runs. Within a shard the points of each preset combination are evaluated in one engine call (each
numeric input becomes an array over those points).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from pydantic import ValidationError

from dse.catalog import Catalog, default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.documents import kind_of, parse_document
from dse.scenarios.sweep import set_path
from dse.services.jobs.summary import shard_summary


@cache
def _catalog() -> Catalog:
    return default_catalog()


def grid_shape(axes: list[dict[str, Any]]) -> list[int]:
    return [len(axis["values"]) for axis in axes]


def shards(points: int, shard_size: int) -> list[tuple[int, int]]:
    """The shards of a grid: consecutive ranges of `shard_size` flat indices (the last may be shorter)."""
    return [(start, min(start + shard_size, points)) for start in range(0, points, shard_size)]


def evaluate_shard(
    document: dict[str, Any], axes: list[dict[str, Any]], start: int, stop: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """The summary of flat indices [start, stop) of the grid. Plain data in and out (see the module doc).

    `axes`: [{"path", "values", "preset": bool}]; `settings`: objective, goal, top_k, pareto,
    pareto_goals, feasible (see dse.services.jobs.service.JobSpec).
    """
    parsed = parse_document(document)
    kind = kind_of(parsed)
    catalog = _catalog()
    shape = grid_shape(axes)
    index = np.arange(start, stop, dtype=np.int64)
    coords = np.unravel_index(index, shape) if index.size else tuple(np.zeros(0, np.int64) for _ in shape)
    n = index.size
    names = list(kind.metric_specs)
    metrics = {name: np.full(n, np.nan) for name in names}
    refused = np.zeros(n, dtype=bool)
    preset_axes = [a for a, axis in enumerate(axes) if axis.get("preset")]
    numeric_axes = [a for a, axis in enumerate(axes) if not axis.get("preset")]
    if preset_axes:
        combos, group_of = np.unique(np.stack([coords[a] for a in preset_axes], axis=1), axis=0, return_inverse=True)
        group_of = group_of.reshape(-1)
    else:
        combos, group_of = np.zeros((1, 0), np.int64), np.zeros(n, np.int64)
    raw_inputs = parsed.inputs.model_dump()  # type: ignore[attr-defined]
    for g, combo in enumerate(combos):
        members = np.flatnonzero(group_of == g)
        if members.size == 0:
            continue
        inputs = dict(raw_inputs)
        for a, c in zip(preset_axes, combo, strict=True):
            inputs[axes[a]["path"]] = axes[a]["values"][int(c)]
        try:
            resolved = kind.resolve(type(parsed.inputs).model_validate(inputs), catalog)  # type: ignore[attr-defined]
            for a in numeric_axes:
                values = np.asarray(axes[a]["values"], dtype=float)[coords[a][members]]
                resolved = set_path(resolved, axes[a]["path"], values)
            with np.errstate(all="ignore"):
                computed = kind.compute(resolved)
        except (InputError, ValidationError, TypeError, ValueError, ArithmeticError):
            refused[members] = True  # this preset combination is refused by the kind's own rules
            continue
        for name, value in computed.items():
            if name in metrics:
                metrics[name][members] = np.broadcast_to(np.asarray(value, dtype=float), (members.size,))
    pareto = settings.get("pareto")
    goals = settings.get("pareto_goals") or ("min", "min")
    return shard_summary(
        shape=shape,
        axis_values=[axis["values"] for axis in axes],
        index=index,
        metrics=metrics,
        refused=refused,
        objective=settings["objective"],
        goal=settings["goal"],
        top_k=settings["top_k"],
        pareto=(pareto[0], pareto[1]) if pareto else None,
        pareto_goals=(goals[0], goals[1]),
        feasible=settings.get("feasible"),
        # The kind's bit-mask metric of why a point cannot run, if it has one (its words on the dashboard).
        reasons=next((name for name, spec in kind.metric_specs.items() if spec.codes), None),
    )


def points_of(axes: list[dict[str, Any]]) -> int:
    return math.prod(grid_shape(axes))
