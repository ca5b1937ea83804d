"""A shard's summary and the merge of two summaries: a pure, associative and commutative function.

Every part merges exactly (no floating-point sums): counts add, top-k keeps the k best by
(value, flat index), the Pareto front is the front of the union, per-axis and 2-D-slice bests take
the better value per cell, histograms add integer counts over fixed logarithmic bins. So merging
shard summaries in any order and grouping gives, bit for bit, the summary of the whole grid in one
shard; `tests/jobs/test_summary.py` checks it.

A summary is plain JSON data:
    points, refused, undefined, infeasible: counts
    top: [[value, index, at, metrics], ...] best first (at: the axis values, metrics: every metric)
    pareto: [[x, y, index], ...] sorted by x
    axis_best: per axis, per axis value, the best objective value (None where nothing defined)
    slices: {"i,j": flat row-major grid len(axis i) x len(axis j) of best values}
    histograms: {metric: {bin: count}}; bin "z" for zero, "p<k>"/"n<k>" for 10^(k/10) <= |v| < 10^((k+1)/10)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Histogram bins per decade of |value|.
BINS_PER_DECADE = 10
#: A 2-D slice is kept for a pair of axes with at most this many cells.
MAX_SLICE_CELLS = 40_000


def _sign(goal: str) -> float:
    return 1.0 if goal == "min" else -1.0


def empty_summary(shape: list[int]) -> dict[str, Any]:
    """The identity of `merge` for a grid of this shape."""
    return {
        "points": 0,
        "refused": 0,
        "undefined": 0,
        "infeasible": 0,
        "top": [],
        "pareto": [],
        "axis_best": [[None] * n for n in shape],
        "slices": {key: [None] * (shape[i] * shape[j]) for key, (i, j) in slice_pairs(shape).items()},
        "histograms": {},
    }


def slice_pairs(shape: list[int]) -> dict[str, tuple[int, int]]:
    return {
        f"{i},{j}": (i, j)
        for i in range(len(shape))
        for j in range(i + 1, len(shape))
        if shape[i] * shape[j] <= MAX_SLICE_CELLS
    }


def _better(a: float | None, b: float | None, sign: float) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if sign * a <= sign * b else b


def pareto_front(points: list[list[Any]], sx: float, sy: float) -> list[list[Any]]:
    """Non-dominated [x, y, index] points (both objectives turned into minimisation by sx, sy).

    p dominates q when it is no worse in both and better in one; equal points all stay. The answer
    is sorted by (sx*x, sy*y, index), so it depends only on the set of points given.
    """
    ordered = sorted(points, key=lambda p: (sx * p[0], sy * p[1], p[2]))
    front: list[list[Any]] = []
    best: tuple[float, float] | None = None  # (X, Y) of the kept point with the lowest Y so far
    for p in ordered:
        x, y = sx * p[0], sy * p[1]
        if best is None or y < best[1] or (y == best[1] and x == best[0]):
            front.append(p)
            if best is None or y < best[1]:
                best = (x, y)
    return front


def merge(
    a: dict[str, Any], b: dict[str, Any], *, goal: str, top_k: int, pareto_goals: tuple[str, str]
) -> dict[str, Any]:
    """The summary of the union of two disjoint sets of points (pure; associative; commutative)."""
    sign = _sign(goal)
    top = sorted(a["top"] + b["top"], key=lambda r: (sign * r[0], r[1]))[:top_k]
    sx, sy = _sign(pareto_goals[0]), _sign(pareto_goals[1])
    histograms: dict[str, dict[str, int]] = {}
    for name in sorted(set(a["histograms"]) | set(b["histograms"])):
        ha, hb = a["histograms"].get(name, {}), b["histograms"].get(name, {})
        histograms[name] = {k: ha.get(k, 0) + hb.get(k, 0) for k in sorted(set(ha) | set(hb))}
    return {
        "points": a["points"] + b["points"],
        "refused": a["refused"] + b["refused"],
        "undefined": a["undefined"] + b["undefined"],
        "infeasible": a["infeasible"] + b["infeasible"],
        "top": top,
        "pareto": pareto_front(a["pareto"] + b["pareto"], sx, sy),
        "axis_best": [
            [_better(x, y, sign) for x, y in zip(ra, rb, strict=True)]
            for ra, rb in zip(a["axis_best"], b["axis_best"], strict=True)
        ],
        "slices": {
            key: [_better(x, y, sign) for x, y in zip(a["slices"][key], b["slices"][key], strict=True)]
            for key in a["slices"]
        },
        "histograms": histograms,
    }


def _histogram(values: np.ndarray) -> dict[str, int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {}
    out: dict[str, int] = {}
    zeros = int(np.count_nonzero(finite == 0))
    if zeros:
        out["z"] = zeros
    for prefix, part in (("p", finite[finite > 0]), ("n", -finite[finite < 0])):
        if part.size:
            bins = np.floor(np.log10(part) * BINS_PER_DECADE).astype(np.int64)
            found, counts = np.unique(bins, return_counts=True)
            out.update({f"{prefix}{int(k)}": int(c) for k, c in zip(found, counts, strict=True)})
    return dict(sorted(out.items()))


def histogram_bin_range(key: str) -> tuple[float, float]:
    """The [low, high) range of values a histogram bin key counts."""
    if key == "z":
        return (0.0, 0.0)
    k = int(key[1:])
    low, high = 10 ** (k / BINS_PER_DECADE), 10 ** ((k + 1) / BINS_PER_DECADE)
    return (low, high) if key[0] == "p" else (-high, -low)


def _value(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def shard_summary(
    *,
    shape: list[int],
    axis_values: list[list[Any]],
    index: np.ndarray,
    metrics: dict[str, np.ndarray],
    refused: np.ndarray,
    objective: str,
    goal: str,
    top_k: int,
    pareto: tuple[str, str] | None,
    pareto_goals: tuple[str, str],
    feasible: str | None,
) -> dict[str, Any]:
    """The summary of the points `index` (flat, row-major over `shape`) with their metric arrays."""
    sign = _sign(goal)
    summary = empty_summary(shape)
    n = int(index.size)
    summary["points"] = n
    summary["refused"] = int(np.count_nonzero(refused))
    value = metrics[objective]
    ok = ~refused
    summary["undefined"] = int(np.count_nonzero(ok & ~np.isfinite(value)))
    if feasible is not None:
        fits = metrics[feasible]
        infeasible = ok & np.isfinite(fits) & (fits == 0)
        summary["infeasible"] = int(np.count_nonzero(infeasible))
        ok = ok & ~infeasible
    good = ok & np.isfinite(value)
    coords = np.unravel_index(index, shape)

    # Top k: order by (sign*value, index); the argsort is stable and index ascends within a shard.
    candidates = np.flatnonzero(good)
    order = candidates[np.argsort(sign * value[candidates], kind="stable")][:top_k]
    summary["top"] = [
        [
            float(value[p]),
            int(index[p]),
            [axis_values[a][int(coords[a][p])] for a in range(len(shape))],
            {name: _value(float(m[p])) for name, m in metrics.items()},
        ]
        for p in order
    ]

    if pareto is not None:
        xs, ys = metrics[pareto[0]], metrics[pareto[1]]
        sx, sy = _sign(pareto_goals[0]), _sign(pareto_goals[1])
        both = np.flatnonzero(ok & np.isfinite(xs) & np.isfinite(ys))
        # Prefilter with numpy: a point whose Y is above the lowest Y of every point before it
        # (in (X, Y) order) is dominated; the exact front is then taken on the few left.
        if both.size:
            order_xy = np.lexsort((index[both], sy * ys[both], sx * xs[both]))
            sorted_ids = both[order_xy]
            y_sorted = sy * ys[sorted_ids]
            prev_min = np.concatenate(([np.inf], np.minimum.accumulate(y_sorted)[:-1]))
            keep = sorted_ids[y_sorted <= prev_min]
            summary["pareto"] = pareto_front([[float(xs[p]), float(ys[p]), int(index[p])] for p in keep], sx, sy)

    # Per-axis and per-pair bests: scatter-reduce with np.minimum.at on sign*value.
    scored = np.where(good, sign * value, np.inf)
    for a, n_a in enumerate(shape):
        best = np.full(n_a, np.inf)
        np.minimum.at(best, coords[a], scored)
        summary["axis_best"][a] = [_value(sign * v) if math.isfinite(v) else None for v in best]
    for key, (i, j) in slice_pairs(shape).items():
        best = np.full(shape[i] * shape[j], np.inf)
        np.minimum.at(best, coords[i] * shape[j] + coords[j], scored)
        summary["slices"][key] = [_value(sign * v) if math.isfinite(v) else None for v in best]

    summary["histograms"] = {name: _histogram(np.where(ok, m, np.nan)) for name, m in sorted(metrics.items())}
    summary["histograms"] = {k: v for k, v in summary["histograms"].items() if v}
    return summary
