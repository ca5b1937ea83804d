"""Plotly figure dicts of the inference kind: throughput vs batch, time breakdown, roofline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYSTEM_LABELS: dict[str, str] = {
    "gpu_only": "GPU-only",
    "npu_only": "NPU-only",
    "npu_pim_blocked": "NPU+PIM (blocked)",
    "neupims": "NeuPIMs",
    "gpu_pim": "GPU+PIM (AttAcc-like)",
}


def throughput_vs_batch(
    batches: Sequence[float], throughput_by_system: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """One line per system: decode throughput (tokens/s) against batch size."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": SYSTEM_LABELS.get(system, system),
            "x": list(batches),
            "y": list(values),
        }
        for system, values in throughput_by_system.items()
    ]
    layout = {
        "title": {"text": "Decode throughput vs batch size"},
        "xaxis": {"title": {"text": "batch size (requests)"}, "type": "log"},
        "yaxis": {"title": {"text": "output tokens/s"}},
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
