"""Charts of a training plan: memory breakdown, iteration-time breakdown, one iteration's timeline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dse.scenarios.shared.palette import DASHES, LABEL_FONT_PX, PALETTE, SYMBOLS, height_for, legend_entries, paint
from dse.scenarios.shared.plain_figure import default_template

GIB = 2.0**30

#: One colour per timeline operation, stable across charts (the bubble is idle time: grey).
TIMELINE_COLOURS: dict[str, str] = {
    "forward": PALETTE[0],
    "backward": PALETTE[1],
    "send": PALETTE[2],
    "context_parallel": PALETTE[5],  # teal (the all-to-alls are red)
    "bubble": PALETTE[9],
    "data_parallel": PALETTE[4],
    "optimizer": PALETTE[8],
    "all_to_all": PALETTE[3],
}


def _finish(fig: go.Figure, *, rows: int = 0, base: int = 360) -> dict[str, Any]:
    """The figure as a dict with one palette colour per series and the height its bars and legend need."""
    return _finish_dict(fig.to_plotly_json(), rows=rows, base=base)


def _finish_dict(figure: dict[str, Any], *, rows: int = 0, base: int = 360) -> dict[str, Any]:
    figure["data"] = paint(figure["data"])
    figure["layout"]["height"] = height_for(rows=rows, legend=legend_entries(figure["data"]), base=base)
    return figure


def _plain(data: list[dict[str, Any]], layout: dict[str, Any], *, base: int) -> dict[str, Any]:
    """A figure written as the dict plotly would give (`_finish`), without building plotly objects:
    the breakdown charts are in every quick answer, and plotly's objects cost ~10 ms a chart."""
    return _finish_dict({"data": data, "layout": {"template": default_template(), **layout}}, base=base)


def memory_breakdown_chart(components: Sequence[tuple[str, float]], capacity_bytes: float) -> dict[str, Any]:
    """Stacked bar of memory per GPU by component (GiB), with the GPU's capacity as a dashed line."""
    capacity = capacity_bytes / GIB
    domain = {"xref": "x domain", "yref": "y"}
    return _plain(
        [
            {"name": label, "x": ["per GPU (peak stage)"], "y": [value / GIB], "type": "bar"}
            for label, value in components
        ],
        {
            "shapes": [
                {"line": {"dash": "dash"}, "type": "line", "x0": 0, "x1": 1, "y0": capacity, "y1": capacity, **domain}
            ],
            "annotations": [
                {
                    "showarrow": False,
                    "text": "GPU memory",
                    "x": 1,
                    "xanchor": "right",
                    "y": capacity,
                    "yanchor": "bottom",
                    **domain,
                }
            ],
            "barmode": "stack",
            "yaxis": {"title": {"text": "memory per GPU (GiB)"}},
            "title": {"text": "Memory per GPU"},
        },
        base=360,
    )


def time_breakdown_chart(components: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Horizontal stacked bar of one iteration's time by component (s); a component that takes no time
    (EP all-to-alls of a dense model) has no bar and no legend entry. The chart keeps the height every
    component's legend entry would need, so its plot area (on the compare page too) stays as tall."""
    figure = _plain(
        [
            {"name": label, "orientation": "h", "x": [value], "y": ["iteration"], "type": "bar"}
            for label, value in components
            if value != 0
        ],
        {
            "barmode": "stack",
            "xaxis": {"title": {"text": "time (s)"}},
            "title": {"text": "Where one iteration's time goes"},
        },
        base=300,
    )
    figure["layout"]["height"] = height_for(legend=len(components), base=300)
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
        yaxis={
            "title": {"text": "pipeline stage"},
            "categoryorder": "array",
            "categoryarray": [f"stage {i}" for i in reversed(range(stages))],
        },
    )
    return _finish(fig, rows=stages)


#: One colour, dash and marker per sequence-parallel variant, stable across charts (lines that lie on each
#: other stay visible).
SEQUENCE_PARALLEL_VARIANTS = ("none", "megatron", "ring", "ulysses")
SEQUENCE_PARALLEL_COLOURS: dict[str, str] = {v: PALETTE[i] for i, v in enumerate(SEQUENCE_PARALLEL_VARIANTS)}


def sequence_parallel_chart(
    sequence_lengths: Sequence[int],
    series: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    capacity_bytes: float,
    title: str,
) -> dict[str, Any]:
    """Four panels over sequence length, one line per sequence-parallel variant: bytes sent per layer
    (sequence-parallel + TP collectives), collective time per iteration, activations and peak
    memory per GPU (with the GPU's capacity), and iteration time. Gaps: invalid plans. Each panel has
    its own axis titles; the chart is tall enough for four panels."""
    y_titles = (
        "sent per layer and micro-batch (MiB)",
        "collectives per iteration (s)",
        "peak memory per GPU (GiB)",
        "iteration time (s)",
    )
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.2, vertical_spacing=0.2)
    # A variant whose values in a panel are all zero (no sequence or tensor parallelism: nothing sent) has no point
    # on its log axes: named in the panel instead of drawn as an empty series; so is, in the first panel, a variant
    # with no valid plan at any length.
    not_drawn: dict[int, list[str]] = {}
    invalid: list[str] = []
    for index, (variant, values) in enumerate(series.items()):
        k = SEQUENCE_PARALLEL_VARIANTS.index(variant) if variant in SEQUENCE_PARALLEL_VARIANTS else index
        colour = SEQUENCE_PARALLEL_COLOURS.get(variant, PALETTE[k % len(PALETTE)])
        sent = [(a + b) / 2.0**20 for a, b in zip(values["sp_bytes"], values["tp_bytes"], strict=True)]
        comm = [a + b for a, b in zip(values["sp_time"], values["tp_time"], strict=True)]
        memory = [m / GIB for m in values["memory_bytes"]]
        panels = ((sent, 1, 1), (comm, 1, 2), (memory, 2, 1), (list(values["iteration_s"]), 2, 2))
        # A plan that does not fit in GPU memory: a hollow marker, said on hover.
        fits = [m is not None and m == m and m <= capacity_bytes / GIB for m in memory]
        symbol = SYMBOLS[k % len(SYMBOLS)]
        symbols = [symbol if f else f"{symbol}-open" for f in fits]
        notes = ["" if f else "<br>does not fit in GPU memory" for f in fits]
        drawn = [any(y is not None and y > 0 for y in ys) for ys, _, _ in panels]
        if not any(drawn):
            invalid.append(variant)
            continue
        in_legend = False  # the variant's first trace drawn carries its legend entry
        for n, (ys, row, col) in enumerate(panels):
            if not drawn[n]:
                not_drawn.setdefault(n, []).append(variant)
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(sequence_lengths),
                    y=ys,
                    mode="lines+markers",
                    name=variant,
                    legendgroup=variant,
                    showlegend=not in_legend,
                    # Wider lines and bigger markers first: a line lying on another still shows around it.
                    line={"color": colour, "dash": DASHES[k % len(DASHES)], "width": max(1.5, 4.0 - k)},
                    marker={"color": colour, "symbol": symbols, "size": max(5, 12 - 2 * k)},
                    text=notes,
                    hovertemplate=f"{variant}: " + "%{y:.4g} at %{x} tokens%{text}<extra></extra>",
                ),
                row=row,
                col=col,
            )
            in_legend = True
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
    for n in sorted(set(not_drawn) | ({0} if invalid else set())):
        axis = "" if n == 0 else str(n + 1)
        lines = [f"zero, not drawn: {', '.join(not_drawn[n])}"] if n in not_drawn else []
        lines += [f"no valid plan: {', '.join(invalid)}"] if invalid and n == 0 else []
        fig.add_annotation(
            text="<br>".join(lines),
            x=0.02,
            xref=f"x{axis} domain",
            y=0.98,
            yref=f"y{axis} domain",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"size": LABEL_FONT_PX},
        )
    for n, (row, col) in enumerate(((1, 1), (1, 2), (2, 1), (2, 2))):
        fig.update_xaxes(type="log", title_text="sequence length (tokens)", row=row, col=col)
        fig.update_yaxes(type="log", title_text=y_titles[n], row=row, col=col)
    fig.update_layout(title=title, height=720)
    figure: dict[str, Any] = fig.to_plotly_json()
    return figure
