"""Charts of a plan search: the Pareto scatter (time vs memory, coloured by GPUs) and the top plans' time breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dse.scenarios.shared.palette import CONTEXT, PALETTE, height_for, legend_entries, paint
from dse.scenarios.shared.plain_figure import dashed_line_at, plain_figure

GIB = 2.0**30
#: Plotly's named "Viridis" colour scale as its validator expands it (the traces skip the validator).
PLOTLY_VIRIDIS = [list(pair) for pair in go.scatter.Marker(colorscale="Viridis").to_plotly_json()["colorscale"]]


def pareto_chart(
    *,
    time_s: Sequence[float],
    memory_bytes: Sequence[float],
    gpus: Sequence[float],
    hover: Sequence[str],
    top_time_s: Sequence[float],
    top_memory_bytes: Sequence[float],
    top_hover: Sequence[str],
    capacity_bytes: float,
    cloud_time_s: Sequence[float] = (),
    cloud_memory_bytes: Sequence[float] = (),
    cloud_gpus: Sequence[float] = (),
) -> dict[str, Any]:
    """Pareto front (iteration time, memory per GPU, GPUs used) as a scatter: x time, y memory,
    colour GPUs; the top plans ringed; hover shows each plan in full. A grey cloud (a sample of all
    plans that fit) shows what the front was chosen from."""
    # Plain dicts (dse.scenarios.shared.plain_figure): Plotly's validation of thousands of points (the
    # cloud, the hover texts) and of the layout costs more than the search of a quick plan search.
    traces: list[dict[str, Any]] = []
    if len(cloud_time_s):
        traces.append(
            {
                "name": "Plans that fit (sample)",
                "x": [float(t) for t in cloud_time_s],
                "y": [m / GIB for m in cloud_memory_bytes],
                "mode": "markers",
                "marker": {"color": CONTEXT, "size": 4, "opacity": 0.5},
                "customdata": list(cloud_gpus),
                "hovertemplate": "%{x:.3g} s, %{y:.1f} GiB, %{customdata} GPUs<extra></extra>",
                "type": "scatter",
            }
        )
    traces.append(
        {
            "name": "Pareto front",
            "x": [float(t) for t in time_s],
            "y": [m / GIB for m in memory_bytes],
            "mode": "markers",
            "marker": {
                "color": list(gpus),
                "colorscale": PLOTLY_VIRIDIS,
                "size": 9,
                "colorbar": {"title": {"text": "GPUs used"}, "x": 1.02, "xanchor": "left"},
                "showscale": True,
            },
            # The colour bar says what the colours are: a legend swatch would show one colour of the scale.
            "showlegend": False,
            "text": list(hover),
            "hovertemplate": "%{text}<extra></extra>",
            "type": "scatter",
        }
    )
    traces.append(
        {
            "name": "Top plans",
            "x": [float(t) for t in top_time_s],
            "y": [m / GIB for m in top_memory_bytes],
            "mode": "markers",
            "marker": {"symbol": "circle-open", "size": 15, "color": PALETTE[3], "line": {"width": 2}},
            "text": list(top_hover),
            "hovertemplate": "%{text}<extra></extra>",
            "type": "scatter",
        }
    )
    return plain_figure(
        traces,
        {
            **dashed_line_at(capacity_bytes / GIB, "GPU memory"),
            "xaxis": {"title": {"text": "iteration time (s)"}, "type": "log"},
            # The legend below the plot, so it never sits on the colour bar.
            "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.3, "yanchor": "top"},
            "margin": {"b": 110},
            "title": {"text": "Plans that fit: iteration time vs memory per GPU (colour: GPUs used)"},
            "yaxis": {"title": {"text": "peak memory per GPU (GiB)"}},
            "height": 480,
        },
    )


def top_plans_breakdown_chart(labels: Sequence[str], parts: Sequence[tuple[str, Sequence[float]]]) -> dict[str, Any]:
    """Stacked horizontal bars: where each top plan's iteration time goes (s). A part no top plan spends
    time on (EP all-to-alls of a dense model) has no bar and no legend entry (the chart keeps its height)."""
    bars = [
        {"name": name, "orientation": "h", "x": list(values), "y": list(labels), "type": "bar"}
        for name, values in parts
        if any(v != 0 for v in values)
    ]
    data = paint(bars)
    return plain_figure(
        data,
        {
            "yaxis": {"title": {"text": "plan"}, "autorange": "reversed"},
            "barmode": "stack",
            "title": {"text": "Iteration time of the top plans, by component"},
            "xaxis": {"title": {"text": "time (s)"}},
            # As tall as with every part drawn (the plot area stays the same on the compare page too).
            "height": height_for(rows=len(labels), legend=max(len(parts), legend_entries(data))),
        },
    )


#: Characters per line of a reason written beside its bar (a sentence wraps onto a few short lines).
REASON_LINE_CHARS = 40
#: Lines of a reason beside its bar at most (the rest is cut with "…"; the hover has the whole sentence).
REASON_LINES = 2
#: Extra height (px) a bar gets per line of its reason past the first.
REASON_LINE_PX = 12
#: The refusals chart's height at most (px): it sits between charts and must not dominate the page.
REFUSALS_MAX_HEIGHT_PX = 520


def _wrapped(text: str, chars: int = REASON_LINE_CHARS, lines: int = REASON_LINES) -> str:
    """The text on at most `lines` lines of at most `chars` characters, broken at spaces (Plotly's <br>);
    what does not fit ends in "…"."""
    out = [""]
    for word in text.split(" "):
        if out[-1] and len(out[-1]) + len(word) + 1 > chars:
            out.append(word)
        else:
            out[-1] = f"{out[-1]} {word}" if out[-1] else word
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: chars - 1].rstrip(" ,;") + "…"
    return "<br>".join(out)


def refusals_chart(reasons: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    """Bar chart of candidates refused per first reason, each written in words (they add up to the
    refused candidates): at most two short lines beside a bar, the whole sentence on hover, and a height
    that never passes `REFUSALS_MAX_HEIGHT_PX`."""
    # Two lines a reason while every bar gets them under the cap, else one (many reasons).
    two_lines = height_for(rows=len(reasons)) + REASON_LINE_PX * len(reasons) <= REFUSALS_MAX_HEIGHT_PX
    labels = [_wrapped(r, lines=REASON_LINES if two_lines else 1) for r in reasons]
    lines = sum(label.count("<br>") + 1 for label in labels)
    return plain_figure(
        [
            {
                "customdata": list(reasons),
                "hovertemplate": "%{customdata}: %{x:,} plans<extra></extra>",
                "marker": {"color": PALETTE[0]},
                "name": "refused",
                "orientation": "h",
                "x": list(counts),
                "y": labels,
                "type": "bar",
            }
        ],
        {
            "xaxis": {"title": {"text": "plans refused (log scale)"}, "type": "log"},
            "title": {"text": "Candidates refused, by first reason"},
            "yaxis": {"title": {"text": "first reason"}, "tickfont": {"size": 11}},
            # Each bar as tall as its reason's lines, the whole chart capped.
            "height": min(
                REFUSALS_MAX_HEIGHT_PX,
                height_for(rows=len(reasons)) + REASON_LINE_PX * (lines - len(reasons)),
            ),
        },
    )
