"""Figures of the temporal_batching kind, as plain Plotly figure dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": name, "x": list(batches), "y": [float(v) for v in values]}
            for name, values in series.items()
        ],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "temporal batch (events)"}, "type": "log"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
            "shapes": _marks(baseline, pres),
            "annotations": [
                {"x": baseline, "y": 1, "yref": "paper", "text": "baseline", "showarrow": False, "xanchor": "right"},
                {"x": pres, "y": 1, "yref": "paper", "text": "PRES", "showarrow": False, "xanchor": "left"},
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
    *, batches: Sequence[float], rate: Mapping[str, Sequence[float]], baseline: float, pres: float
) -> dict[str, Any]:
    """Share of a batch's events touching a node touched earlier in the batch, per dataset."""
    return _by_dataset(
        title="Temporal-discontinuity rate vs temporal batch",
        y_title="share of events",
        batches=batches,
        series=rate,
        baseline=baseline,
        pres=pres,
    )
