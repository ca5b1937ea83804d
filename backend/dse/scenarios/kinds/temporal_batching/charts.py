"""Charts of `temporal_batching` (Plotly figure dicts): throughput and discontinuity rate against the
temporal batch, one line per dataset, the baseline and PRES batches marked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dse.scenarios.base import Chart
from dse.scenarios.shared.palette import LABEL_FONT_PX, PALETTE, height_for, paint


def _marks(baseline_batch: float, pres_batch: float) -> list[dict[str, Any]]:
    return [
        {
            "type": "line",
            "x0": x,
            "x1": x,
            "yref": "paper",
            "y0": 0,
            "y1": 1,
            "line": {"dash": dash, "width": 1},
        }
        for x, dash in ((baseline_batch, "dot"), (pres_batch, "dash"))
    ]


def _by_dataset(
    *,
    title: str,
    y_title: str,
    batches: Sequence[float],
    series: Mapping[str, Sequence[float]],
    baseline: float,
    pres: float,
) -> dict[str, Any]:
    data = paint(
        (
            {"type": "scatter", "mode": "lines", "name": name, "x": list(batches), "y": [float(v) for v in values]}
            for name, values in series.items()
        ),
        lines=True,
    )
    return {
        "data": data,
        "layout": {
            "height": height_for(legend=len(data)),
            "title": {"text": title},
            "xaxis": {"title": {"text": "temporal batch (events)"}, "type": "log"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
            "shapes": _marks(baseline, pres),
            # Annotations on a log axis take log10 of the value (shapes take the value; plotly.js #6880).
            "annotations": [
                {
                    "x": math.log10(baseline),
                    "y": 1,
                    "yref": "paper",
                    "text": "baseline",
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "top",
                },
                {
                    "x": math.log10(pres),
                    "y": 1,
                    "yref": "paper",
                    "text": "PRES",
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "top",
                },
            ],
        },
    }


def throughput_vs_batch(
    *, batches: Sequence[float], events_per_s: Mapping[str, Sequence[float]], baseline: float, pres: float
) -> dict[str, Any]:
    """Training events/s against the temporal batch, one line per dataset."""
    return _by_dataset(
        title="Training throughput vs temporal batch",
        y_title="events/s",
        batches=batches,
        series=events_per_s,
        baseline=baseline,
        pres=pres,
    )


def discontinuity_vs_batch(
    *,
    batches: Sequence[float],
    rate: Mapping[str, Sequence[float]],
    baseline: float,
    pres: float,
    threshold: float | None = None,
    threshold_batch: float | None = None,
) -> dict[str, Any]:
    """Share of a batch's events touching a node touched earlier in the batch, per dataset; with a
    threshold, a horizontal line at it and a vertical one at the largest batch that stays under it."""
    figure = _by_dataset(
        title="Temporal-discontinuity rate vs temporal batch",
        y_title="share of events",
        batches=batches,
        series=rate,
        baseline=baseline,
        pres=pres,
    )
    layout = figure["layout"]
    if threshold is not None:
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": threshold,
                "y1": threshold,
                "line": {"color": PALETTE[3], "width": 1},
            }
        )
        layout["annotations"].append(
            {
                "xref": "paper",
                "x": 0,
                "y": threshold,
                "text": f"threshold {threshold:g}",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
            }
        )
    if threshold_batch is not None and threshold_batch > 0:
        layout["shapes"].append(
            {
                "type": "line",
                "x0": threshold_batch,
                "x1": threshold_batch,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": PALETTE[3], "dash": "dashdot", "width": 1},
            }
        )
        # Its label at its foot, right of it (log10 of the value on the log axis; plotly.js #6880).
        layout["annotations"].append(
            {
                "x": math.log10(threshold_batch),
                "yref": "paper",
                "y": 0,
                "xanchor": "left",
                "yanchor": "bottom",
                "text": f"largest batch under {threshold:g}" if threshold is not None else "largest batch",
                "showarrow": False,
                "font": {"size": LABEL_FONT_PX, "color": PALETTE[3]},
            }
        )
    return figure


def charts(
    *,
    batches: Sequence[float],
    curves: Mapping[str, tuple[Any, Any]],
    baseline: float,
    pres: float,
    threshold: float,
    threshold_batch: float,
) -> list[Chart]:
    """The kind's charts for one design point; `curves` maps a dataset to (events/s, rate) over `batches`."""
    return [
        Chart(
            key="throughput_vs_batch",
            title="Throughput vs temporal batch, per dataset",
            figure=throughput_vs_batch(
                batches=batches,
                events_per_s={k: list(np.asarray(t)) for k, (t, _) in curves.items()},
                baseline=baseline,
                pres=pres,
            ),
        ),
        Chart(
            key="discontinuity_vs_batch",
            title="Temporal-discontinuity rate vs temporal batch, per dataset",
            figure=discontinuity_vs_batch(
                batches=batches,
                rate={k: list(np.asarray(d)) for k, (_, d) in curves.items()},
                baseline=baseline,
                pres=pres,
                threshold=threshold,
                threshold_batch=threshold_batch,
            ),
        ),
    ]
