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
    axis_why, slice_why: why a cell has no best (None above): per axis [{value index: why}], per slice
        {"i,j": {flat cell: why}}, why = [refused, infeasible, undefined, reason bits OR-ed] over the cell's
        points; kept only for cells without a best, so a merge adds them (OR-ing the bits) where both have
        none and drops them where either has one, which is exact in any order and grouping.
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
        "axis_why": [{} for _ in shape],
        "slice_why": {key: {} for key in slice_pairs(shape)},
    }


def _merge_why(a: dict[str, list[int]], b: dict[str, list[int]], best: list[float | None]) -> dict[str, list[int]]:
    """Why-counts of the cells that still have no best after a merge: counts add, reason bits OR."""
    out: dict[str, list[int]] = {}
    for cell in sorted(set(a) | set(b), key=int):
        if best[int(cell)] is not None:
            continue
        x, y = a.get(cell, [0, 0, 0, 0]), b.get(cell, [0, 0, 0, 0])
        out[cell] = [x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] | y[3]]
    return out


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
    axis_best = [
        [_better(x, y, sign) for x, y in zip(ra, rb, strict=True)]
        for ra, rb in zip(a["axis_best"], b["axis_best"], strict=True)
    ]
    slices = {
        key: [_better(x, y, sign) for x, y in zip(a["slices"][key], b["slices"][key], strict=True)]
        for key in a["slices"]
    }
    # A summary stored before the why-counts existed has none (its empty cells then say less).
    a_axis, b_axis = a.get("axis_why") or [{} for _ in axis_best], b.get("axis_why") or [{} for _ in axis_best]
    a_slice, b_slice = a.get("slice_why") or {}, b.get("slice_why") or {}
    return {
        "points": a["points"] + b["points"],
        "refused": a["refused"] + b["refused"],
        "undefined": a["undefined"] + b["undefined"],
        "infeasible": a["infeasible"] + b["infeasible"],
        "top": top,
        "pareto": pareto_front(a["pareto"] + b["pareto"], sx, sy),
        "axis_best": axis_best,
        "slices": slices,
        "histograms": histograms,
        "axis_why": [_merge_why(x, y, best) for x, y, best in zip(a_axis, b_axis, axis_best, strict=True)],
        "slice_why": {key: _merge_why(a_slice.get(key, {}), b_slice.get(key, {}), slices[key]) for key in slices},
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
    reasons: str | None = None,
) -> dict[str, Any]:
    """The summary of the points `index` (flat, row-major over `shape`) with their metric arrays;
    `reasons`: the kind's bit-mask metric of why a point cannot run (OR-ed into an empty cell's why)."""
    sign = _sign(goal)
    summary = empty_summary(shape)
    n = int(index.size)
    summary["points"] = n
    summary["refused"] = int(np.count_nonzero(refused))
    value = metrics[objective]
    ok = ~refused
    summary["undefined"] = int(np.count_nonzero(ok & ~np.isfinite(value)))
    infeasible = np.zeros(n, dtype=bool)
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

    # Why a cell has no best: its points refused, infeasible and without a value, and their reason bits.
    undefined = ok & ~np.isfinite(value)
    bits = np.zeros(n, dtype=np.int64)
    if reasons is not None:
        code = metrics[reasons]
        bits = np.where(np.isfinite(code) & ~good, np.nan_to_num(code), 0).astype(np.int64)
    # Only the points without a value of their own are counted (usually few: a full grid costs nothing).
    bad = np.flatnonzero(~good)
    masks = [refused[bad], infeasible[bad], undefined[bad]]
    at = [c[bad] for c in coords]
    summary["axis_why"] = [_why(at[a], n_a, masks, bits[bad], summary["axis_best"][a]) for a, n_a in enumerate(shape)]
    summary["slice_why"] = {
        key: _why(at[i] * shape[j] + at[j], shape[i] * shape[j], masks, bits[bad], summary["slices"][key])
        for key, (i, j) in slice_pairs(shape).items()
    }

    summary["histograms"] = {name: _histogram(np.where(ok, m, np.nan)) for name, m in sorted(metrics.items())}
    summary["histograms"] = {k: v for k, v in summary["histograms"].items() if v}
    return summary


def _why(
    cell: np.ndarray, cells: int, masks: list[np.ndarray], bits: np.ndarray, best: list[float | None]
) -> dict[str, list[int]]:
    """Per cell without a best (and with points): [refused, infeasible, undefined, reason bits OR-ed].
    `masks`: the points refused, infeasible and undefined (disjoint); only those points are counted."""
    if cell.size == 0:
        return {}
    totals = np.stack([np.bincount(cell[m], minlength=cells) for m in masks])
    ored = np.zeros(cells, dtype=np.int64)
    with_bits = np.flatnonzero(bits)
    np.bitwise_or.at(ored, cell[with_bits], bits[with_bits])
    empty = [c for c in np.flatnonzero(totals.sum(axis=0)) if best[int(c)] is None]
    return {str(int(c)): [*(int(t) for t in totals[:, c]), int(ored[c])] for c in empty}
