"""Charts of a plan search: the Pareto scatter (time vs memory, coloured by GPUs) and the top plans' time breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

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
    # Traces are plain dicts: Plotly's validation of thousands of points (the cloud, the hover texts)
    # costs more than the search of a quick plan search; the layout still comes from Plotly.
    traces: list[dict[str, Any]] = []
    if len(cloud_time_s):
        traces.append(
            {
                "name": "Plans that fit (sample)",
                "x": [float(t) for t in cloud_time_s],
                "y": [m / GIB for m in cloud_memory_bytes],
                "mode": "markers",
                "marker": {"color": "#BBBBBB", "size": 4, "opacity": 0.5},
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
                "colorbar": {"title": {"text": "GPUs"}},
                "showscale": True,
            },
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
            "marker": {"symbol": "circle-open", "size": 15, "color": "#E45756", "line": {"width": 2}},
            "text": list(top_hover),
            "hovertemplate": "%{text}<extra></extra>",
            "type": "scatter",
        }
    )
    fig = go.Figure()
    fig.add_hline(y=capacity_bytes / GIB, line_dash="dash", annotation_text="GPU memory")
    fig.update_layout(
        title="Plans that fit: iteration time vs memory per GPU (colour: GPUs used)",
        xaxis_title="iteration time (s)",
        yaxis_title="peak memory per GPU (GiB)",
        xaxis_type="log",
    )
    figure: dict[str, Any] = fig.to_plotly_json()
    figure["data"] = traces
    return figure


def top_plans_breakdown_chart(labels: Sequence[str], parts: Sequence[tuple[str, Sequence[float]]]) -> dict[str, Any]:
    """Stacked horizontal bars: where each top plan's iteration time goes (s)."""
    fig = go.Figure()
    for name, values in parts:
        fig.add_trace(go.Bar(name=name, y=list(labels), x=list(values), orientation="h"))
    fig.update_layout(
        barmode="stack",
        title="Iteration time of the top plans, by component",
        xaxis_title="time (s)",
        yaxis={"autorange": "reversed"},
    )
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure


def refusals_chart(reasons: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    """Bar chart of candidates refused per first reason (they add up to the refused candidates)."""
    fig = go.Figure(go.Bar(x=list(counts), y=list(reasons), orientation="h"))
    fig.update_layout(title="Candidates refused, by first reason", xaxis_title="plans", xaxis_type="log")
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure
