"""Solve for: the smallest value of one input that meets a target on one metric.

Vectorised bisection: each round evaluates `points` values spread over every open bracket at once,
in ONE engine call (the input becomes an array of shape (rows, points)), and keeps, per row, the
sub-bracket where the target is first met. With an `over` axis (e.g. batch sizes) every row is its
own problem and all rows advance together in the same call. The first round spans the bounds and is
returned as the curve; if the target is met, then missed, further up that curve the metric is not
monotone in the input and the answer is marked so (it is still the smallest value met on the curve,
refined within its bracket). A whole-number input is solved over integers (the answer is the
smallest integer met, its predecessor is not). As in a sweep, only the bounds are checked against the
kind's own input rules; values between them are priced by the engine as they are (e.g. a tensor-
parallel degree that does not divide the heads).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import InputError
from dse.scenarios.documents import kind_of, parse_document
from dse.scenarios.sweep import SweepAxis, _check_axis, set_path, sweepable_paths
from dse.services.jobs.service import JobError


class OverAxis(BaseModel):
    path: str
    values: list[float] = Field(min_length=1, max_length=10_000)


class SolveRequest(BaseModel):
    document: dict[str, Any]
    path: str = Field(description="The input to solve for (a numeric input's dotted path).")
    metric: str
    target: float
    sense: Literal["<=", ">="] = Field("<=", description="Met when metric <= target (or >=).")
    low: float
    high: float
    scale: Literal["log", "linear"] = "log"
    points: int = Field(33, ge=3, le=1025, description="Values per bracket per round (one engine call a round).")
    rel_tol: float = Field(1e-6, gt=0, lt=1)
    max_rounds: int = Field(40, ge=1, le=200)
    over: OverAxis | None = Field(None, description="Solve once per value of this input, all in the same calls.")


def _spread(low: np.ndarray, high: np.ndarray, points: int, scale: str) -> Any:
    t = np.linspace(0.0, 1.0, points)
    if scale == "log":
        return np.exp(np.log(low)[:, None] + (np.log(high) - np.log(low))[:, None] * t)
    return low[:, None] + (high - low)[:, None] * t


def solve(request: SolveRequest, catalog: Catalog) -> dict[str, Any]:
    try:
        parsed = parse_document(request.document)
    except ValidationError as exc:
        raise JobError("document", str(exc.errors()[0]["msg"])) from None
    kind = kind_of(parsed)
    if request.metric not in kind.metric_specs:
        raise JobError("metric", f"'{request.metric}' is not a metric of {kind.kind}")
    if not request.low < request.high:
        raise JobError("high", "give low < high")
    if request.scale == "log" and request.low <= 0:
        raise JobError("low", "a log scale needs low > 0")
    inputs: Any = parsed.inputs  # type: ignore[attr-defined]
    base = kind.resolve(inputs, catalog)
    leaves = sweepable_paths(base)
    _check_axis(kind, inputs, catalog, 0, SweepAxis(path=request.path, values=[request.low, request.high]), leaves)
    if request.over is not None:
        if request.over.path == request.path:
            raise JobError("over.path", "solve over a different input")
        _check_axis(kind, inputs, catalog, 1, SweepAxis(path=request.over.path, values=request.over.values), leaves)
        over = np.asarray(request.over.values, dtype=float)
    else:
        over = np.zeros(1)
    rows = over.size
    # A whole-number input (an int in the resolved tree or in the document's schema) is solved over integers.
    raw = inputs.model_dump()
    top_value = raw.get(request.path)
    whole = isinstance(leaves[request.path], int) or (isinstance(top_value, int) and not isinstance(top_value, bool))

    def evaluate(xs: np.ndarray) -> Any:
        resolved = set_path(base, request.path, np.round(xs) if whole else xs)
        if request.over is not None:
            resolved = set_path(resolved, request.over.path, over[:, None])
        try:
            with np.errstate(all="ignore"):
                value = kind.compute(resolved)[request.metric]
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise InputError("path", f"this input cannot be solved for: {exc}") from None
        return np.broadcast_to(np.asarray(value, dtype=float), xs.shape).copy()

    def met(values: np.ndarray) -> Any:
        with np.errstate(invalid="ignore"):
            return values <= request.target if request.sense == "<=" else values >= request.target

    low = np.full(rows, request.low)
    high = np.full(rows, request.high)
    xs = _spread(low, high, request.points, request.scale)
    ys = evaluate(xs)
    calls = 1
    ok = met(ys)
    any_met = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    # Monotone when, past the first value that meets the target, every value meets it.
    monotone = np.array([bool(ok[r, first[r] :].all()) if any_met[r] else True for r in range(rows)])
    answer = np.where(any_met, xs[np.arange(rows), first], np.nan)
    open_ = any_met & (first > 0)
    low = np.where(open_, xs[np.arange(rows), np.maximum(first - 1, 0)], answer)
    high = answer.copy()
    rounds = 1
    while open_.any() and rounds < request.max_rounds:
        width = (high - low) / np.abs(high)
        open_ &= width > request.rel_tol
        if whole:
            open_ &= (high - low) > 1
        if not open_.any():
            break
        idx = np.flatnonzero(open_)
        grid = _spread(low[idx], high[idx], request.points, "linear")
        values = evaluate_rows(evaluate, grid, idx, rows)
        calls += 1
        rounds += 1
        hit = met(values)
        hit[:, -1] = True  # the bracket's top meets the target by construction
        j = np.argmax(hit, axis=1)
        new_high = grid[np.arange(idx.size), j]
        new_low = grid[np.arange(idx.size), np.maximum(j - 1, 0)]
        new_low = np.where(j == 0, new_high, new_low)
        high[idx], low[idx] = new_high, new_low
        open_[idx] = j > 0
    answer = np.where(any_met, high, np.nan)
    if whole:  # the whole numbers evaluate() used for the bracket's ends
        answer, low, high = np.round(answer), np.round(low), np.round(high)
    at_answer = evaluate(answer[:, None].copy())[:, 0]
    spec = kind.metric_specs[request.metric]
    return {
        "kind": kind.kind,
        "path": request.path,
        "metric": request.metric,
        "unit": spec.unit,
        "label": spec.label,
        "target": request.target,
        "sense": request.sense,
        "over": {"path": request.over.path, "values": request.over.values} if request.over else None,
        "answers": [
            {
                "over": float(over[r]) if request.over else None,
                "value": float(answer[r]) if any_met[r] else None,
                "metric_at_value": float(at_answer[r]) if any_met[r] and np.isfinite(at_answer[r]) else None,
                "met": bool(any_met[r]),
                "monotone": bool(monotone[r]),
                "bracket": [float(low[r]), float(high[r])] if any_met[r] else None,
            }
            for r in range(rows)
        ],
        "curve": {"x": xs.tolist(), "y": [[float(v) if np.isfinite(v) else None for v in row] for row in ys]},
        "rounds": rounds,
        "engine_calls": calls + 1,
    }


def evaluate_rows(evaluate: Any, grid: np.ndarray, idx: np.ndarray, rows: int) -> Any:
    """Evaluates only the open rows: the other rows get a copy of the first open row (discarded)."""
    full = np.repeat(grid[:1], rows, axis=0)
    full[idx] = grid
    return evaluate(full)[idx]
