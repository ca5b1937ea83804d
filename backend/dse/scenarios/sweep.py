"""Sweeps: one or two numeric inputs replaced by arrays, evaluated in one engine call."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import MAX_COUNT, InputError, ScenarioKind, Work, check_stop
from dse.scenarios.vocabulary import RelativeBand, ValidationScope

#: Most design points one request may ask for (the JSON answer grows with it).
MAX_SWEEP_POINTS = 250_000
#: Design points per engine call of a large sweep: between calls the sweep checks its deadline.
SWEEP_CHUNK_POINTS = 16_384
#: Working bytes one chunk may hold (a kind with large per-point arrays gets smaller chunks).
SWEEP_CHUNK_BYTES = 64 * 2**20
#: A nested leaf (an inline spec's field) may move this factor either way from its resolved value.
NESTED_RANGE_FACTOR = 1e6


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
    bands: dict[str, RelativeBand] = Field(
        default_factory=dict,
        description="Each time- or throughput-like metric's validation band, as factors of its value at every point.",
    )
    validation_scope: ValidationScope | None = None


#: Leaves of a preset that describe it (a published figure about it), not inputs the engine reads.
METADATA_PREFIXES = ("published_",)


def sweepable_paths(resolved: Any, prefix: str = "") -> dict[str, float | int]:
    """Every numeric leaf of a resolved tree of dataclasses, by dotted path."""
    leaves: dict[str, float | int] = {}
    if not dataclasses.is_dataclass(resolved):
        return leaves
    for f in dataclasses.fields(resolved):
        value = getattr(resolved, f.name)
        path = f"{prefix}{f.name}"
        if isinstance(value, bool) or f.name.startswith(METADATA_PREFIXES):
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


def _raw_path(raw: dict[str, Any], path: str) -> bool:
    """Whether `path` names a number inside the document's own inputs (a field, or a field of an inline object)."""
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is None or (isinstance(node, int | float) and not isinstance(node, bool))  # None: an unset override


def _with_value(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    candidate = copy.deepcopy(raw)
    node = candidate
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = int(value) if isinstance(node[leaf], int) else value
    return candidate


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
    low, high = min(axis.values), max(axis.values)
    # Every leaf: whole numbers are counts (at most 2^31 - 1); a positive leaf stays positive.
    if isinstance(base, int) and max(abs(low), abs(high)) > MAX_COUNT:
        raise InputError(f"{where}.values", f"'{axis.path}' takes whole numbers up to {MAX_COUNT}")
    # Re-validate the extremes through the schema and the kind's own rules where the path is a
    # number of the document itself (a field, or a field of an inline object), so a sweep cannot
    # reach an input the form refuses (the same bounds: dse.scenarios.shared.bounds).
    raw = inputs.model_dump()
    if _raw_path(raw, axis.path):
        for extreme in (low, high):
            try:
                kind.resolve(type(inputs).model_validate(_with_value(raw, axis.path, extreme)), catalog)
            except ValidationError as exc:
                raise InputError(f"{where}.values", f"{extreme:g} is refused: {exc.errors()[0]['msg']}") from None
            except InputError as exc:
                raise InputError(f"{where}.values", f"{extreme:g} is refused: {exc.reason}") from None
        return
    if base > 0 and low <= 0:
        raise InputError(f"{where}.values", f"'{axis.path}' must stay positive")
    if base >= 0 and low < 0:
        raise InputError(f"{where}.values", f"'{axis.path}' must not be negative")
    if (
        not isinstance(base, int)
        and base > 0
        and not (base / NESTED_RANGE_FACTOR <= low and high <= base * NESTED_RANGE_FACTOR)
    ):
        # A preset's field has no schema bound of its own: keep it within six orders of magnitude either way.
        raise InputError(
            f"{where}.values",
            f"'{axis.path}' may range over {base / NESTED_RANGE_FACTOR:g} .. {base * NESTED_RANGE_FACTOR:g}",
        )


def run_sweep(
    kind: ScenarioKind[Any, Any],
    inputs: BaseModel,
    catalog: Catalog,
    axes: list[SweepAxis],
    check_work: Callable[[Work], None] | None = None,
) -> SweepResult:
    """Evaluates the grid spanned by the axes (outer product): one `compute` call, or one per chunk
    of the first axis for a large grid (checking the deadline between chunks, `check_stop`).
    `check_work` sees the kind's cost estimate of the whole grid before any engine runs (and raises to refuse)."""
    if not 1 <= len(axes) <= 2:
        raise InputError("axes", "give one or two axes")
    if len({a.path for a in axes}) != len(axes):
        raise InputError("axes", "each axis must name a different input")
    shape = [len(a.values) for a in axes]
    if math.prod(shape) > MAX_SWEEP_POINTS:
        raise InputError("axes", f"{math.prod(shape)} points requested; at most {MAX_SWEEP_POINTS} per request")
    base = kind.resolve(inputs, catalog)
    leaves = sweepable_paths(base)
    for index, axis in enumerate(axes):
        _check_axis(kind, inputs, catalog, index, axis, leaves)
    if check_work is not None:
        check_work(kind.work(_grid(base, axes, [a.values for a in axes])))
    chunk_points = min(SWEEP_CHUNK_POINTS, max(1, int(SWEEP_CHUNK_BYTES // kind.bytes_per_point)))
    rows_per_chunk = max(1, chunk_points // max(1, math.prod(shape[1:])))
    chunks: list[dict[str, Any]] = []
    for start in range(0, shape[0], rows_per_chunk):  # one chunk for most sweeps
        check_stop()
        values = [axes[0].values[start : start + rows_per_chunk], *(a.values for a in axes[1:])]
        try:
            with np.errstate(all="ignore"):
                raw = kind.compute(_grid(base, axes, values))
        except (TypeError, ValueError) as exc:
            raise InputError("axes", f"this combination of inputs cannot be swept: {exc}") from None
        chunk_shape = [len(values[0]), *shape[1:]]
        chunks.append({k: np.broadcast_to(np.asarray(v, dtype=float), chunk_shape) for k, v in raw.items()})
    metrics: dict[str, Any] = {}
    for key in chunks[0]:
        grid = chunks[0][key] if len(chunks) == 1 else np.concatenate([c[key] for c in chunks], axis=0)
        # Python floats with None where undefined, built in C (a Python pass took ~1 s for 250k points).
        cells = grid.astype(object)
        cells[~np.isfinite(grid)] = None
        metrics[key] = cells.tolist()
    specs = kind.metric_specs
    gates = [k for k in chunks[0] if k in specs and specs[k].boolean]
    feasible: Any = None
    if gates:
        ok = np.ones(shape, dtype=bool)
        for key in gates:
            gate = chunks[0][key] if len(chunks) == 1 else np.concatenate([c[key] for c in chunks], axis=0)
            ok &= np.isfinite(gate) & (gate > 0)
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


def _grid(base: Any, axes: list[SweepAxis], values: list[list[float]]) -> Any:
    """The resolved tree with each axis' leaf an array along its own grid axis."""
    resolved = base
    for index, (axis, axis_values) in enumerate(zip(axes, values, strict=True)):
        grid_shape = [1] * len(axes)
        grid_shape[index] = len(axis_values)
        try:
            resolved = set_path(resolved, axis.path, np.asarray(axis_values, dtype=float).reshape(grid_shape))
        except (TypeError, ValueError) as exc:  # a spec whose own checks read this leaf as one number
            raise InputError(f"axes[{index}].path", f"'{axis.path}' cannot be swept: {exc}") from None
    return resolved
