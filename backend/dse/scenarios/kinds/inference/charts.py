"""Plotly charts of the inference kind: throughput vs batch, time breakdown, roofline, MoE experts touched."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dse.scenarios.kinds.inference.inputs import SYSTEM_LABELS
from dse.scenarios.kinds.inference.studies import MoEOverBatch
from dse.scenarios.shared.palette import BAR_ROW_PX, LABEL_FONT_PX, SYMBOLS, colour, height_for, legend_entries, paint


def throughput_vs_batch(
    batches: Sequence[float],
    throughput_by_system: Mapping[str, Sequence[float]],
    *,
    labels: Mapping[str, str] | None = None,
    dashed: Mapping[str, Sequence[float]] | None = None,
    crossover_batch: float | None = None,
    max_batch_that_fits: float | None = None,
    banded: str | None = None,
) -> dict[str, Any]:
    """One line per system: decode throughput (tokens/s) against batch size.

    `banded`: the system whose line is this scenario's answer; it carries `meta.band` so the service
    draws the validation error band around it (dse.services.bands).

    `labels` names each system's line (e.g. with its device); `dashed` adds reference lines
    (e.g. NeuPIMs with and without sub-batch interleaving); `crossover_batch` and
    `max_batch_that_fits` draw vertical markers.
    """
    names = labels or {}
    # Batches larger than the largest that fits: hollow markers, said on hover.
    fits = [max_batch_that_fits is None or b <= max_batch_that_fits for b in batches]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": names.get(system, SYSTEM_LABELS.get(system, system)),
            "x": list(batches),
            "y": list(values),
            "marker": {"symbol": [SYMBOLS[n % len(SYMBOLS)] + ("" if f else "-open") for f in fits]},
            "text": ["" if f else "<br>does not fit in memory" for f in fits],
            "hovertemplate": "batch %{x}: %{y:.4g} tokens/s%{text}<extra>%{fullData.name}</extra>",
            **({"meta": {"band": "rate"}} if system == banded else {}),
        }
        for n, (system, values) in enumerate(throughput_by_system.items())
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
    marks = [(crossover_batch, "interleaving pays from here"), (max_batch_that_fits, "largest batch that fits")]
    for n, (x, text) in enumerate(marks):
        if x is None:
            continue
        shapes.append(
            {"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dot", "width": 1}}
        )
        # Shapes take data values on a log axis; annotations take log10 of them (plotly.js #6880).
        # Written along the line, inside the plot, one at the top and one at the bottom (they never meet).
        annotations.append(
            {
                "x": math.log10(x),
                "xanchor": "right",
                "yref": "paper",
                "y": 1.0 if n == 0 else 0.0,
                "yanchor": "top" if n == 0 else "bottom",
                "text": text,
                "showarrow": False,
                "textangle": -90,
                "font": {"size": LABEL_FONT_PX},
            }
        )
    data = paint(data, lines=True)
    layout = {
        "title": {"text": "Decode throughput vs batch size"},
        "xaxis": {"title": {"text": "batch size (requests)"}, "type": "log"},
        "yaxis": {"title": {"text": "output tokens/s"}},
        "shapes": shapes,
        "annotations": annotations,
        "height": height_for(legend=legend_entries(data)),
    }
    return {"data": data, "layout": layout}


def time_breakdown(
    op_names: Sequence[str], op_times_s: Sequence[float], op_units: Sequence[str], unit_busy_s: Mapping[str, float]
) -> dict[str, Any]:
    """Per-op time of one decode layer (horizontal bars coloured by unit, every op named) above the busy
    time per unit (same colours). A unit with no time at all (the links of a single device) is left out."""
    idle = {
        u
        for u in set(op_units) | set(unit_busy_s)
        if unit_busy_s.get(u, 0.0) <= 0.0 and all(t <= 0.0 for t, v in zip(op_times_s, op_units, strict=True) if v == u)
    }
    kept = [(n, t, u) for n, t, u in zip(op_names, op_times_s, op_units, strict=True) if u not in idle]
    op_names, op_times_s, op_units = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    unit_busy_s = {u: t for u, t in unit_busy_s.items() if u not in idle}
    units = sorted(set(op_units) | set(unit_busy_s))
    colours = {unit: colour(n) for n, unit in enumerate(units)}
    data: list[dict[str, Any]] = []
    for unit in sorted(set(op_units)):
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": unit,
                "legendgroup": unit,
                "y": [n for n, u in zip(op_names, op_units, strict=True) if u == unit],
                "x": [t * 1e6 for t, u in zip(op_times_s, op_units, strict=True) if u == unit],
                "marker": {"color": colours[unit]},
                "xaxis": "x",
                "yaxis": "y",
                "hovertemplate": "%{y}: %{x:.4g} us<extra>" + unit + "</extra>",
            }
        )
    data.append(
        {
            "type": "bar",
            "orientation": "h",
            "name": "busy per unit",
            "y": list(unit_busy_s),
            "x": [t * 1e6 for t in unit_busy_s.values()],
            "marker": {"color": [colours[u] for u in unit_busy_s]},
            "xaxis": "x2",
            "yaxis": "y2",
            "showlegend": False,
            "hovertemplate": "%{y}: busy %{x:.4g} us per layer<extra></extra>",
        }
    )
    # Each panel gets a share of the height proportional to its rows (every op name shown), with room
    # between them for the upper panel's axis title.
    ops, busy = len(op_names), max(1, len(unit_busy_s))
    plot_px = BAR_ROW_PX * (ops + busy) + 80.0
    height = max(int(plot_px) + 140, height_for(legend=len(units)))
    lower = busy * BAR_ROW_PX / plot_px
    layout = {
        "title": {"text": "Time of one decode layer: per op and per unit"},
        "xaxis": {"title": {"text": "time per op (µs)"}, "anchor": "y"},
        "yaxis": {
            "title": {"text": "op"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(dict.fromkeys(op_names)),
            "autorange": "reversed",
            "domain": [lower + 80.0 / plot_px, 1.0],
            "dtick": 1,
        },
        "xaxis2": {"title": {"text": "busy time per layer (µs)"}, "anchor": "y2"},
        "yaxis2": {"title": {"text": "unit"}, "type": "category", "domain": [0.0, lower], "anchor": "x2"},
        "barmode": "relative",
        "height": height,
        "legend": {"title": {"text": "unit"}},
    }
    return {"data": data, "layout": layout}


def roofline(
    op_names: Sequence[str],
    intensity_flop_per_byte: Sequence[float],
    achieved_flops_per_s: Sequence[float],
    peak_flops_per_s: float,
    bandwidth_bytes_per_s: float,
    not_drawn: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Roofline of the device with each op as a point (log-log); `not_drawn`: ops it cannot place, with why
    (`studies.roofline_points`), named in the chart's note."""
    finite = [i for i in intensity_flop_per_byte if i > 0]
    low = min([*finite, 0.1]) / 2.0
    high = max([*finite, 2.0 * peak_flops_per_s / bandwidth_bytes_per_s]) * 2.0
    ridge = peak_flops_per_s / bandwidth_bytes_per_s
    xs = [low, ridge, high]
    roof = [min(peak_flops_per_s, x * bandwidth_bytes_per_s) / 1e12 for x in xs]
    # One trace per op (its own colour and marker, named in the legend): labels written next to the
    # points overprinted each other where ops share an intensity.
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "roof", "x": xs, "y": roof, "line": {"color": "#3C4650"}}
    ]
    for n, (name, x, f) in enumerate(zip(op_names, intensity_flop_per_byte, achieved_flops_per_s, strict=True)):
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [x],
                "y": [f / 1e12],
                "marker": {"color": colour(n), "symbol": SYMBOLS[n % len(SYMBOLS)], "size": 10},
                "hovertemplate": f"{name}<br>" + "%{x:.3g} FLOP/byte, %{y:.3g} TFLOP/s<extra></extra>",
            }
        )
    layout = {
        "title": {"text": "Roofline: ops of one decode layer"},
        "xaxis": {"title": {"text": "arithmetic intensity (FLOP/byte)"}, "type": "log"},
        "yaxis": {"title": {"text": "achieved TFLOP/s"}, "type": "log"},
        "height": height_for(legend=legend_entries(data)),
    }
    # One op per line: a phone-wide chart keeps the note inside it, and a narrow note clears the legend.
    if not_drawn:
        layout["annotations"] = [
            {
                "text": "<br>".join(["not drawn:", *(f"{name} ({why})" for name, why in not_drawn.items())]),
                "xref": "paper",
                "yref": "paper",
                "x": 0.01,
                "y": 0.99,
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": LABEL_FONT_PX},
            }
        ]
    return {"data": data, "layout": layout}


def moe_experts_vs_batch(study: MoEOverBatch) -> dict[str, Any]:
    """Two panels over the batch (log): the routed experts one decode step touches per MoE layer against
    all E (and k, one token's), and the expert weights it reads per device against all stored."""
    gib = float(2**30)
    xs = study.batches
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "experts touched (expected, uniform routing)",
            "x": xs,
            "y": study.experts_touched,
            "hovertemplate": "batch %{x}: %{y:.1f} experts<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"all {study.num_experts:.0f} routed experts",
            "x": [xs[0], xs[-1]],
            "y": [study.num_experts] * 2,
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "expert weights read per step",
            "x": xs,
            "y": [b / gib for b in study.expert_bytes_read],
            "xaxis": "x2",
            "yaxis": "y2",
            "hovertemplate": "batch %{x}: %{y:.3g} GiB read<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "all expert weights stored",
            "x": [xs[0], xs[-1]],
            "y": [study.expert_bytes_stored / gib] * 2,
            "xaxis": "x2",
            "yaxis": "y2",
            "hoverinfo": "skip",
        },
    ]
    data = paint(data, lines=True)
    marker = {"type": "line", "x0": study.batch, "x1": study.batch, "yref": "paper", "y0": 0, "y1": 1}
    layout = {
        "title": {"text": f"MoE decode step: experts touched (k = {study.experts_per_token:.0f} per token)"},
        "xaxis": {"type": "log", "anchor": "y", "matches": "x2", "showticklabels": False},
        "yaxis": {"title": {"text": "experts per layer"}, "domain": [0.56, 1.0], "rangemode": "tozero"},
        "xaxis2": {"title": {"text": "batch size (requests)"}, "type": "log", "anchor": "y2"},
        "yaxis2": {"title": {"text": "GiB per device"}, "domain": [0.0, 0.44], "rangemode": "tozero"},
        "shapes": [{**marker, "line": {"dash": "dot", "width": 1}}],
        "annotations": [
            {
                # On a log axis an annotation takes log10 of the value (plotly.js #6880).
                "x": math.log10(study.batch),
                "xanchor": "right",
                "yref": "paper",
                "y": 0.5,
                "yanchor": "middle",
                "text": "this batch",
                "showarrow": False,
                "textangle": -90,
                "font": {"size": LABEL_FONT_PX},
            }
        ],
        "height": max(480, height_for(legend=legend_entries(data))),
    }
    return {"data": data, "layout": layout}
