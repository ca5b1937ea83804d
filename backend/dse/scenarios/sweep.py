"""Sweeps: one or two numeric inputs replaced by arrays, evaluated in one engine call."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import InputError, ScenarioKind

#: Most design points one request may ask for (the JSON answer grows with it).
MAX_SWEEP_POINTS = 250_000


class SweepAxis(BaseModel):
    path: str = Field(description="Dotted path of a numeric input, e.g. 'batch_size' or 'model.hidden_size'.")
    values: list[float] = Field(min_length=1, max_length=MAX_SWEEP_POINTS)


class SweepResult(BaseModel):
    kind: str
    engine_version: str
    axes: list[SweepAxis]
    shape: list[int]
    metrics: dict[str, Any] = Field(description="Each metric as a (nested) list over the axes; null where undefined.")
    units: dict[str, str]
    labels: dict[str, str]
    feasible: Any = Field(
        default=None,
        description="Whether each design point is feasible (fits), as a (nested) list over the axes: every yes/no "
        "metric of the kind (e.g. fits) is yes and no metric is undefined there. Null when the kind has none.",
    )
    infeasible_because: list[str] = Field(
        default_factory=list, description="The yes/no metrics that decide `feasible` (their labels)."
    )


def sweepable_paths(resolved: Any, prefix: str = "") -> dict[str, float | int]:
    """Every numeric leaf of a resolved tree of dataclasses, by dotted path."""
    leaves: dict[str, float | int] = {}
    if not dataclasses.is_dataclass(resolved):
        return leaves
    for f in dataclasses.fields(resolved):
        value = getattr(resolved, f.name)
        path = f"{prefix}{f.name}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            leaves[path] = value  # int or float, as the kind resolved it (ints sweep whole numbers only)
        elif dataclasses.is_dataclass(value):
            leaves.update(sweepable_paths(value, path + "."))
    return leaves


def set_path(resolved: Any, path: str, value: Any) -> Any:
    """A copy of the resolved tree with the leaf at `path` replaced."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(resolved, **{head: value})
    return dataclasses.replace(resolved, **{head: set_path(getattr(resolved, head), rest, value)})


def _check_axis(
    kind: ScenarioKind[Any, Any],
    inputs: BaseModel,
    catalog: Catalog,
    index: int,
    axis: SweepAxis,
    leaves: dict[str, float | int],
) -> None:
    where = f"axes[{index}]"
    if axis.path not in leaves:
        raise InputError(
            f"{where}.path",
            f"'{axis.path}' is not a numeric input of this scenario; sweepable: {', '.join(sorted(leaves))}",
        )
    if any(not math.isfinite(v) for v in axis.values):
        raise InputError(f"{where}.values", "values must be finite numbers")
    base = leaves[axis.path]
    if isinstance(base, int) and any(not float(v).is_integer() for v in axis.values):
        raise InputError(f"{where}.values", f"'{axis.path}' takes whole numbers")
    # Re-validate the extremes through the schema and the kind's own rules where the path
    # is a field of the document itself, so a sweep cannot reach an input the form refuses.
    top = axis.path.split(".")[0]
    raw = inputs.model_dump()
    if "." not in axis.path and top in raw:
        for extreme in (min(axis.values), max(axis.values)):
            candidate = dict(raw)
            candidate[top] = int(extreme) if isinstance(raw[top], int) else extreme
            try:
                kind.resolve(type(inputs).model_validate(candidate), catalog)
            except ValidationError as exc:
                raise InputError(f"{where}.values", f"{extreme:g} is refused: {exc.errors()[0]['msg']}") from None
            except InputError as exc:
                raise InputError(f"{where}.values", f"{extreme:g} is refused: {exc.reason}") from None
    elif base > 0 and min(axis.values) <= 0:
        raise InputError(f"{where}.values", f"'{axis.path}' must stay positive")


def run_sweep(kind: ScenarioKind[Any, Any], inputs: BaseModel, catalog: Catalog, axes: list[SweepAxis]) -> SweepResult:
    """Evaluates the grid spanned by the axes (outer product) in one `compute` call."""
    if not 1 <= len(axes) <= 2:
        raise InputError("axes", "give one or two axes")
    if len({a.path for a in axes}) != len(axes):
        raise InputError("axes", "each axis must name a different input")
    shape = [len(a.values) for a in axes]
    if math.prod(shape) > MAX_SWEEP_POINTS:
        raise InputError("axes", f"{math.prod(shape)} points requested; at most {MAX_SWEEP_POINTS} per request")
    resolved = kind.resolve(inputs, catalog)
    leaves = sweepable_paths(resolved)
    for index, axis in enumerate(axes):
        _check_axis(kind, inputs, catalog, index, axis, leaves)
        grid_shape = [1] * len(axes)
        grid_shape[index] = len(axis.values)
        resolved = set_path(resolved, axis.path, np.asarray(axis.values, dtype=float).reshape(grid_shape))
    try:
        with np.errstate(all="ignore"):
            raw_metrics = kind.compute(resolved)
    except (TypeError, ValueError) as exc:
        raise InputError("axes", f"this combination of inputs cannot be swept: {exc}") from None
    metrics: dict[str, Any] = {}
    for key, value in raw_metrics.items():
        grid = np.broadcast_to(np.asarray(value, dtype=float), shape)
        # Python floats with None where undefined, built in C (a Python pass took ~1 s for 250k points).
        cells = grid.astype(object)
        cells[~np.isfinite(grid)] = None
        metrics[key] = cells.tolist()
    specs = kind.metric_specs
    gates = [k for k in raw_metrics if k in specs and specs[k].boolean]
    feasible: Any = None
    if gates:
        ok = np.ones(shape, dtype=bool)
        for key in gates:
            grid = np.broadcast_to(np.asarray(raw_metrics[key], dtype=float), shape)
            ok &= np.isfinite(grid) & (grid > 0)
        feasible = ok.tolist()
    return SweepResult(
        kind=kind.kind,
        engine_version=kind.engine_version,
        axes=axes,
        shape=shape,
        metrics=metrics,
        units={k: specs[k].unit for k in metrics},
        labels={k: specs[k].label for k in metrics},
        feasible=feasible,
        infeasible_because=[specs[k].label for k in gates],
    )
