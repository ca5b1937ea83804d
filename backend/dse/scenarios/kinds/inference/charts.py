"""Plotly charts of the inference kind: throughput vs batch, time breakdown, roofline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dse.scenarios.kinds.inference.inputs import SYSTEM_LABELS


def throughput_vs_batch(
    batches: Sequence[float],
    throughput_by_system: Mapping[str, Sequence[float]],
    *,
    labels: Mapping[str, str] | None = None,
    dashed: Mapping[str, Sequence[float]] | None = None,
    crossover_batch: float | None = None,
    max_batch_that_fits: float | None = None,
) -> dict[str, Any]:
    """One line per system: decode throughput (tokens/s) against batch size.

    `labels` names each system's line (e.g. with its device); `dashed` adds reference lines
    (e.g. NeuPIMs with and without sub-batch interleaving); `crossover_batch` and
    `max_batch_that_fits` draw vertical markers.
    """
    names = labels or {}
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": names.get(system, SYSTEM_LABELS.get(system, system)),
            "x": list(batches),
            "y": list(values),
        }
        for system, values in throughput_by_system.items()
    ]
    for name, values in (dashed or {}).items():
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": list(batches),
                "y": list(values),
                "line": {"dash": "dash"},
            }
        )
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for x, text in ((crossover_batch, "interleaving pays from here"), (max_batch_that_fits, "largest batch that fits")):
        if x is None:
            continue
        shapes.append(
            {"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dot", "width": 1}}
        )
        # Shapes take data values on a log axis; annotations take log10 of them (plotly.js #6880).
        annotations.append(
            {"x": math.log10(x), "yref": "paper", "y": 1.0, "text": text, "showarrow": False, "textangle": -90}
        )
    layout = {
        "title": {"text": "Decode throughput vs batch size"},
        "xaxis": {"title": {"text": "batch size (requests)"}, "type": "log"},
        "yaxis": {"title": {"text": "output tokens/s"}},
        "shapes": shapes,
        "annotations": annotations,
    }
    return {"data": data, "layout": layout}


def time_breakdown(
    op_names: Sequence[str], op_times_s: Sequence[float], op_units: Sequence[str], unit_busy_s: Mapping[str, float]
) -> dict[str, Any]:
    """Per-op time of one decode layer (bars coloured by unit) and busy time per unit."""
    data: list[dict[str, Any]] = []
    for unit in sorted(set(op_units)):
        data.append(
            {
                "type": "bar",
                "name": unit,
                "x": [n for n, u in zip(op_names, op_units, strict=True) if u == unit],
                "y": [t * 1e6 for t, u in zip(op_times_s, op_units, strict=True) if u == unit],
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    data.append(
        {
            "type": "bar",
            "name": "busy per unit",
            "x": list(unit_busy_s),
            "y": [t * 1e6 for t in unit_busy_s.values()],
            "xaxis": "x2",
            "yaxis": "y2",
            "showlegend": False,
        }
    )
    layout = {
        "title": {"text": "Time of one decode layer: per op and per unit"},
        "grid": {"rows": 1, "columns": 2, "pattern": "independent"},
        "xaxis": {"title": {"text": "op"}},
        "yaxis": {"title": {"text": "time (us)"}},
        "xaxis2": {"title": {"text": "unit"}},
        "yaxis2": {"title": {"text": "busy time per layer (us)"}},
        "barmode": "group",
    }
    return {"data": data, "layout": layout}


def roofline(
    op_names: Sequence[str],
    intensity_flop_per_byte: Sequence[float],
    achieved_flops_per_s: Sequence[float],
    peak_flops_per_s: float,
    bandwidth_bytes_per_s: float,
) -> dict[str, Any]:
    """Roofline of the device with each op as a point (log-log)."""
    finite = [i for i in intensity_flop_per_byte if i > 0]
    low = min([*finite, 0.1]) / 2.0
    high = max([*finite, 2.0 * peak_flops_per_s / bandwidth_bytes_per_s]) * 2.0
    ridge = peak_flops_per_s / bandwidth_bytes_per_s
    xs = [low, ridge, high]
    roof = [min(peak_flops_per_s, x * bandwidth_bytes_per_s) / 1e12 for x in xs]
    data = [
        {"type": "scatter", "mode": "lines", "name": "roof", "x": xs, "y": roof},
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "ops",
            "x": list(intensity_flop_per_byte),
            "y": [f / 1e12 for f in achieved_flops_per_s],
            "text": list(op_names),
            "textposition": "top center",
        },
    ]
    layout = {
        "title": {"text": "Roofline: ops of one decode layer"},
        "xaxis": {"title": {"text": "arithmetic intensity (FLOP/byte)"}, "type": "log"},
        "yaxis": {"title": {"text": "achieved TFLOP/s"}, "type": "log"},
    }
    return {"data": data, "layout": layout}
