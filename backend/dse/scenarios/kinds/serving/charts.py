"""Charts of the serving kind (Plotly figure dicts): latency CDFs, percentiles against the arrival rate
(the rate search's simulations), the batch composition over time, and the queue and KV-cache use."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dse.engines.serving import SimulationResult
from dse.scenarios.base import Chart
from dse.scenarios.kinds.serving.studies import Search
from dse.scenarios.shared.palette import LABEL_FONT_PX, PALETTE

#: One colour per series, from the explorer's one palette.
COLOURS = tuple(PALETTE[:6])
#: Two quantities of different units share the time or rate axis as two stacked panels (a right-hand
#: axis would sit under the legend): the upper and lower panel's share of the height.
UPPER, LOWER = [0.56, 1.0], [0.0, 0.44]
PANELS_HEIGHT_PX = 560
#: Most points a line carries (the timeline is thinned to it).
MAX_POINTS = 2_000


def _cdf(values: np.ndarray) -> tuple[list[float], list[float]]:
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        return [], []
    step = max(1, finite.size // MAX_POINTS)
    x = finite[::step]
    y = (np.arange(finite.size)[::step] + 1) / finite.size
    return [float(v) for v in x], [float(v) for v in y]


def latency_cdf(values: np.ndarray, *, name: str, slo_s: float, percentile: float, colour: str) -> dict[str, Any]:
    x, y = _cdf(values)
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y, "line": {"color": colour}},
        ],
        "layout": {
            "title": {"text": f"{name}: cumulative distribution"},
            "xaxis": {"title": {"text": f"{name} (s)"}, "type": "log"},
            "yaxis": {"title": {"text": "share of requests"}, "range": [0, 1.02]},
            "shapes": [
                {"type": "line", "x0": slo_s, "x1": slo_s, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dash"}},
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": percentile / 100,
                    "y1": percentile / 100,
                    "line": {"dash": "dot"},
                },
            ],
            # Each line's label beside it (annotations on a log axis take log10 of the value; plotly.js
            # #6880): the SLO at the foot of its line, the percentile under its line at the left.
            "annotations": [
                {
                    "x": math.log10(slo_s),
                    "yref": "paper",
                    "y": 0,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "text": f"SLO {slo_s:g} s",
                    "showarrow": False,
                    "font": {"size": LABEL_FONT_PX},
                },
                {
                    "xref": "paper",
                    "x": 0,
                    "y": percentile / 100,
                    "xanchor": "left",
                    "yanchor": "top",
                    "text": f"p{percentile:g}",
                    "showarrow": False,
                    "font": {"size": LABEL_FONT_PX},
                },
            ],
        },
    }


def _slo_lines(ttft_slo_s: float, tpot_slo_s: float) -> list[dict[str, Any]]:
    """The TTFT SLO across the upper panel and the TPOT SLO across the lower one (dashed)."""
    return [
        {
            "type": "line",
            "xref": "paper",
            "yref": yref,
            "x0": 0,
            "x1": 1,
            "y0": slo,
            "y1": slo,
            "line": {"dash": "dash", "color": colour},
        }
        for yref, slo, colour in (("y", ttft_slo_s, COLOURS[0]), ("y2", tpot_slo_s, COLOURS[1]))
    ]


def _slo_labels(ttft_slo_s: float, tpot_slo_s: float) -> list[dict[str, Any]]:
    """Each SLO line's label at its right end, above it (both panels' y axes are log: log10 of the value)."""
    return [
        {
            "xref": "paper",
            "x": 1,
            "yref": yref,
            "y": math.log10(slo),
            "xanchor": "right",
            "yanchor": "bottom",
            "text": f"{name} SLO {slo:g} s",
            "showarrow": False,
            "font": {"size": LABEL_FONT_PX, "color": colour},
        }
        for yref, name, slo, colour in (("y", "TTFT", ttft_slo_s, COLOURS[0]), ("y2", "TPOT", tpot_slo_s, COLOURS[1]))
    ]


def percentiles_vs_rate(search: Search, *, ttft_slo_s: float, tpot_slo_s: float, percentile: float) -> dict[str, Any]:
    evals = sorted(search.evaluations, key=lambda s: s.rate_per_s)
    rates = [s.rate_per_s for s in evals]

    def line(name: str, values: list[float], colour: str, axis: str, dash: str = "solid") -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": rates,
            "y": [v if np.isfinite(v) else None for v in values],
            "line": {"color": colour, "dash": dash},
            "yaxis": axis,
        }

    q = f"p{percentile:g}"
    return {
        "data": [
            line(f"TTFT {q}", [s.ttft_at_slo_percentile_s for s in evals], COLOURS[0], "y"),
            line("TTFT p50", [s.ttft_s["p50"] for s in evals], COLOURS[2], "y", "dot"),
            line(f"TPOT {q}", [s.tpot_at_slo_percentile_s for s in evals], COLOURS[1], "y2"),
            line("TPOT p50", [s.tpot_s["p50"] for s in evals], COLOURS[3], "y2", "dot"),
        ],
        "layout": {
            "title": {"text": "Latency percentiles against the arrival rate (the rate search's simulations)"},
            "height": PANELS_HEIGHT_PX,
            "xaxis": {"title": {"text": "arrival rate (requests/s, whole deployment)"}, "anchor": "y2"},
            "yaxis": {"title": {"text": "TTFT (s)"}, "type": "log", "domain": UPPER},
            "yaxis2": {"title": {"text": "TPOT (s)"}, "type": "log", "domain": LOWER, "anchor": "x"},
            "shapes": _slo_lines(ttft_slo_s, tpot_slo_s)
            + (
                [
                    {
                        "type": "line",
                        "x0": search.max_rate_per_s,
                        "x1": search.max_rate_per_s,
                        "yref": "paper",
                        "y0": 0,
                        "y1": 1,
                        "line": {"dash": "dot", "color": "#444"},
                    }
                ]
                if np.isfinite(search.max_rate_per_s) and search.max_rate_per_s > 0
                else []
            ),
            "annotations": _slo_labels(ttft_slo_s, tpot_slo_s)
            + (
                [
                    {
                        "x": search.max_rate_per_s,
                        "yref": "paper",
                        "y": 0,
                        "xanchor": "right",
                        "yanchor": "bottom",
                        "text": "highest rate within the SLOs",
                        "showarrow": False,
                        "textangle": -90,
                        "font": {"size": LABEL_FONT_PX},
                    }
                ]
                if np.isfinite(search.max_rate_per_s) and search.max_rate_per_s > 0
                else []
            ),
        },
    }


def _thin(sim: SimulationResult) -> np.ndarray:
    n = len(sim.step_start_s)
    return np.arange(0, n, max(1, n // MAX_POINTS))


def batch_timeline(sim: SimulationResult) -> dict[str, Any]:
    i = _thin(sim)
    t = [float(v) for v in sim.step_start_s[i]]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": COLOURS[0]},
                "name": "running decode requests",
                "x": t,
                "y": [float(v) for v in sim.step_decode_batch[i]],
            },
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": COLOURS[1]},
                "name": "prefill tokens per iteration",
                "x": t,
                "y": [float(v) for v in sim.step_prefill_tokens[i]],
                "yaxis": "y2",
            },
        ],
        "layout": {
            "title": {"text": "Batch composition per iteration (one replica)"},
            "height": PANELS_HEIGHT_PX,
            "xaxis": {"title": {"text": "time (s)"}, "anchor": "y2"},
            "yaxis": {"title": {"text": "decode requests"}, "rangemode": "tozero", "domain": UPPER},
            "yaxis2": {"title": {"text": "prefill tokens"}, "rangemode": "tozero", "domain": LOWER, "anchor": "x"},
        },
    }


def queue_timeline(sim: SimulationResult, capacity_blocks: int) -> dict[str, Any]:
    i = _thin(sim)
    t = [float(v) for v in sim.step_start_s[i]]
    use = sim.step_kv_blocks[i] / max(capacity_blocks, 1)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": COLOURS[2]},
                "name": "waiting requests",
                "x": t,
                "y": [float(v) for v in sim.step_queue[i]],
            },
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": COLOURS[3]},
                "name": "KV-cache use",
                "x": t,
                "y": [float(v) for v in use],
                "yaxis": "y2",
            },
        ],
        "layout": {
            "title": {"text": "Queue length and KV-cache use over time (one replica)"},
            "height": PANELS_HEIGHT_PX,
            "xaxis": {"title": {"text": "time (s)"}, "anchor": "y2"},
            "yaxis": {"title": {"text": "waiting requests"}, "rangemode": "tozero", "domain": UPPER},
            "yaxis2": {
                "title": {"text": "KV-cache use (share)"},
                "range": [0, 1.05],
                "domain": LOWER,
                "anchor": "x",
            },
        },
    }


def disaggregated_vs_colocated(
    disaggregated: Search, colocated: Search, *, ttft_slo_s: float, tpot_slo_s: float, percentile: float
) -> dict[str, Any]:
    """TTFT and TPOT at the SLO percentile against the rate, both deployments' rate searches (same devices)."""
    q = f"p{percentile:g}"

    def line(search: Search, name: str, colour: str, attr: str, axis: str, dash: str) -> dict[str, Any]:
        evals = sorted(search.evaluations, key=lambda s: s.rate_per_s)
        return {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": [s.rate_per_s for s in evals],
            "y": [v if np.isfinite(v) else None for v in (getattr(s, attr) for s in evals)],
            "line": {"color": colour, "dash": dash},
            "yaxis": axis,
        }

    return {
        "data": [
            line(disaggregated, f"TTFT {q}, disaggregated", COLOURS[0], "ttft_at_slo_percentile_s", "y", "solid"),
            line(colocated, f"TTFT {q}, co-located", COLOURS[0], "ttft_at_slo_percentile_s", "y", "dot"),
            line(disaggregated, f"TPOT {q}, disaggregated", COLOURS[1], "tpot_at_slo_percentile_s", "y2", "solid"),
            line(colocated, f"TPOT {q}, co-located", COLOURS[1], "tpot_at_slo_percentile_s", "y2", "dot"),
        ],
        "layout": {
            "title": {"text": "Disaggregated against co-located on the same devices (the rate searches)"},
            "height": PANELS_HEIGHT_PX,
            "xaxis": {"title": {"text": "arrival rate (requests/s, whole deployment)"}, "anchor": "y2"},
            "yaxis": {"title": {"text": "TTFT (s)"}, "type": "log", "domain": UPPER},
            "yaxis2": {"title": {"text": "TPOT (s)"}, "type": "log", "domain": LOWER, "anchor": "x"},
            "shapes": _slo_lines(ttft_slo_s, tpot_slo_s),
            "annotations": _slo_labels(ttft_slo_s, tpot_slo_s),
        },
    }


def charts(
    sim: SimulationResult,
    search: Search,
    *,
    capacity_blocks: int,
    ttft_slo_s: float,
    tpot_slo_s: float,
    percentile: float,
    colocated: Search | None = None,
) -> list[Chart]:
    extra = (
        [
            Chart(
                key="disaggregated_vs_colocated",
                title="Disaggregated vs co-located",
                figure=disaggregated_vs_colocated(
                    search, colocated, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s, percentile=percentile
                ),
            )
        ]
        if colocated is not None
        else []
    )
    return [
        *extra,
        Chart(
            key="ttft_cdf",
            title="TTFT distribution",
            figure=latency_cdf(sim.ttft_s, name="TTFT", slo_s=ttft_slo_s, percentile=percentile, colour=COLOURS[0]),
        ),
        Chart(
            key="tpot_cdf",
            title="TPOT distribution",
            figure=latency_cdf(sim.tpot_s, name="TPOT", slo_s=tpot_slo_s, percentile=percentile, colour=COLOURS[1]),
        ),
        Chart(
            key="percentiles_vs_rate",
            title="Latency vs arrival rate",
            figure=percentiles_vs_rate(search, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s, percentile=percentile),
        ),
        Chart(key="batch_timeline", title="Batch composition over time", figure=batch_timeline(sim)),
        Chart(
            key="queue_kv_timeline", title="Queue and KV cache over time", figure=queue_timeline(sim, capacity_blocks)
        ),
    ]
