"""Charts of a training plan: memory breakdown, iteration-time breakdown, one iteration's timeline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

GIB = 2.0**30

#: One colour per timeline operation, stable across charts.
TIMELINE_COLOURS: dict[str, str] = {
    "forward": "#4C78A8",
    "backward": "#F58518",
    "send": "#54A24B",
    "bubble": "#D3D3D3",
    "data_parallel": "#B279A2",
    "optimizer": "#9D755D",
}


def memory_breakdown_chart(components: Sequence[tuple[str, float]], capacity_bytes: float) -> dict[str, Any]:
    """Stacked bar of memory per GPU by component (GiB), with the GPU's capacity as a line."""
    fig = go.Figure()
    for label, value in components:
        fig.add_trace(go.Bar(name=label, x=["per GPU (peak stage)"], y=[value / GIB]))
    fig.add_hline(y=capacity_bytes / GIB, line_dash="dash", annotation_text="GPU memory")
    fig.update_layout(barmode="stack", yaxis_title="memory (GiB)", title="Memory per GPU")
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure


def time_breakdown_chart(components: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Horizontal stacked bar of one iteration's time by component (s)."""
    fig = go.Figure()
    for label, value in components:
        fig.add_trace(go.Bar(name=label, y=["iteration"], x=[value], orientation="h"))
    fig.update_layout(barmode="stack", xaxis_title="time (s)", title="Where one iteration's time goes")
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure


def timeline_chart(events: Sequence[Any], stages: int) -> dict[str, Any]:
    """Gantt chart: one row per pipeline stage, bars from start to end, coloured by operation.

    `events` are objects with stage, operation, micro_batch, chunk, start_s and end_s.
    """
    fig = go.Figure()
    for operation, colour in TIMELINE_COLOURS.items():
        chosen = [e for e in events if e.operation == operation]
        if not chosen:
            continue
        fig.add_trace(
            go.Bar(
                name=operation,
                orientation="h",
                y=[f"stage {e.stage}" for e in chosen],
                base=[e.start_s for e in chosen],
                x=[e.end_s - e.start_s for e in chosen],
                marker_color=colour,
                text=[
                    f"mb {e.micro_batch}" + (f" c{e.chunk}" if e.chunk > 0 else "") if e.micro_batch >= 0 else ""
                    for e in chosen
                ],
                hovertemplate="%{y} %{text}<br>%{base:.4g} s + %{x:.4g} s<extra>" + operation + "</extra>",
            )
        )
    fig.update_layout(
        barmode="overlay",
        title="One iteration, per pipeline stage and micro-batch",
        xaxis_title="time (s)",
        yaxis={"categoryorder": "array", "categoryarray": [f"stage {i}" for i in reversed(range(stages))]},
    )
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure


#: One colour per sequence-parallel variant, stable across charts.
SEQUENCE_PARALLEL_COLOURS: dict[str, str] = {
    "none": "#4C78A8",
    "megatron": "#F58518",
    "ring": "#54A24B",
    "ulysses": "#E45756",
}


def sequence_parallel_chart(
    sequence_lengths: Sequence[int],
    series: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    capacity_bytes: float,
    title: str,
) -> dict[str, Any]:
    """Four panels over sequence length, one line per sequence-parallel variant: bytes sent per layer
    (sequence-parallel + TP collectives), collective time per iteration, activations and peak
    memory per GPU (with the GPU's capacity), and iteration time. Gaps: invalid plans."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "bytes sent per layer per micro-batch (MiB)",
            "collectives per iteration (s)",
            "peak memory per GPU (GiB)",
            "iteration time (s)",
        ),
    )
    for variant, values in series.items():
        colour = SEQUENCE_PARALLEL_COLOURS.get(variant)
        sent = [(a + b) / 2.0**20 for a, b in zip(values["sp_bytes"], values["tp_bytes"], strict=True)]
        comm = [a + b for a, b in zip(values["sp_time"], values["tp_time"], strict=True)]
        memory = [m / GIB for m in values["memory_bytes"]]
        panels = ((sent, 1, 1), (comm, 1, 2), (memory, 2, 1), (list(values["iteration_s"]), 2, 2))
        for n, (ys, row, col) in enumerate(panels):
            fig.add_trace(
                go.Scatter(
                    x=list(sequence_lengths),
                    y=ys,
                    mode="lines+markers",
                    name=variant,
                    legendgroup=variant,
                    showlegend=n == 0,
                    line={"color": colour},
                ),
                row=row,
                col=col,
            )
    fig.add_hline(y=capacity_bytes / GIB, line_dash="dash", row=2, col=1)
    # On a log axis an annotation's y is log10 of the value (a shape's is the value; plotly.js #6880).
    fig.add_annotation(
        text="GPU memory",
        x=1,
        xref="x3 domain",
        y=math.log10(capacity_bytes / GIB),
        yref="y3",
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )
    for row in (1, 2):
        for col in (1, 2):
            fig.update_xaxes(type="log", title_text="sequence length (tokens)", row=row, col=col)
            fig.update_yaxes(type="log", row=row, col=col)
    fig.update_layout(title=title)
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure
