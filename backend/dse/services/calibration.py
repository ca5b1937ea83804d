"""Kernel calibration charts: each fit's measurements beside the fitted kernel model (Plotly figures).

One chart per fit (accelerator x dtype x software stack x kernel family) of
models_db/calibration/fits/, drawn from its data file:
- GEMM: achieved throughput (2 M N K / time) against M, the measured points and the model at the
  same shapes, and the model's curve over M for the data set's most frequent (N, K);
- prefill attention (FlashAttention): achieved throughput against the sequence length, measured
  points and the model's curve per head dim and mask;
- decode attention: measured and modelled time of each measured kernel.

The charts depend only on the catalog's files, so they are computed once per catalog root.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from dse.catalog import Catalog
from dse.catalog.calibration import KernelFit, load_data, load_fits
from dse.engines.kernels import (
    AttentionKernelModel,
    GemmKernelModel,
    attention_decode_time_s,
    attention_flop,
    attention_prefill_time_s,
    gemm_time_s,
)
from dse.scenarios.shared.palette import colour as palette_colour

__all__ = ["CalibrationChart", "calibration_charts"]

MEASURED = "#1f5fa8"
MODEL = "#e07b00"
#: Most points drawn per trace (a large data set is thinned evenly; the residuals use every row).
MAX_POINTS = 600


class CalibrationChart(BaseModel):
    """One fit's measurements and model, as a Plotly figure."""

    key: str = Field(description="The fit's id: accelerator.dtype.stack.kernel_family.")
    accelerator: str
    dtype: str
    stack: str
    kernel_family: str
    title: str
    source: str
    rows: int
    mean_abs_pct_error: float
    max_abs_pct_error: float
    figure: dict[str, Any] = Field(description="Plotly figure: data (traces) and layout.")


def _columns(data: dict[str, Any], names: tuple[str, ...]) -> list[np.ndarray]:
    cols: list[str] = data["columns"]
    rows = data["rows"]
    return [np.asarray([float(r[cols.index(n)]) for r in rows]) for n in names]


def _thin(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).round().astype(int)) if n else np.zeros(0, int)


def _layout(title: str, x_title: str, y_title: str, *, x_log: bool = True) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.02, "font": {"size": 13}},
        "xaxis": {"title": {"text": x_title}, "type": "log" if x_log else "linear"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
    }


def _gemm_figure(fit: KernelFit, model: GemmKernelModel, data: dict[str, Any]) -> dict[str, Any]:
    m, n, k, t = _columns(data, ("m", "n", "k", "time_s"))
    predicted = np.asarray(gemm_time_s(model, m, n, k).time_s)
    flop = 2.0 * m * n * k
    keep = _thin(m.size)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "measured",
            "x": m[keep].tolist(),
            "y": (flop / t / 1e12)[keep].tolist(),
            "marker": {"color": MEASURED, "size": 6, "opacity": 0.6},
            "hovertemplate": "M %{x}<br>%{y:.1f} TFLOP/s measured<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "model, same shapes",
            "x": m[keep].tolist(),
            "y": (flop / predicted / 1e12)[keep].tolist(),
            "marker": {"color": MODEL, "size": 6, "symbol": "x", "opacity": 0.7},
            "hovertemplate": "M %{x}<br>%{y:.1f} TFLOP/s model<extra></extra>",
        },
    ]
    (n0, k0), _ = Counter(zip(n.tolist(), k.tolist(), strict=True)).most_common(1)[0]
    grid = np.unique(np.geomspace(1.0, max(float(m.max()), 2.0), 200).round())
    curve = np.asarray(gemm_time_s(model, grid, n0, k0).time_s)
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"model curve, N {n0:.0f}, K {k0:.0f}",
            "x": grid.tolist(),
            "y": (2.0 * grid * n0 * k0 / curve / 1e12).tolist(),
            "line": {"color": MODEL, "width": 2},
        }
    )
    ceiling = model.peak_flops_per_s * model.compute_efficiency / 1e12
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"fitted ceiling ({model.compute_efficiency:.0%} of peak)",
            "x": [float(grid[0]), float(grid[-1])],
            "y": [ceiling, ceiling],
            "line": {"color": "#7b8794", "dash": "dot", "width": 1},
        }
    )
    return {
        "data": traces,
        "layout": _layout(_title(fit), "M (rows of A: tokens)", "achieved throughput (TFLOP/s)"),
    }


def _prefill_figure(fit: KernelFit, model: AttentionKernelModel, data: dict[str, Any]) -> dict[str, Any]:
    b, h, s, d, causal, t = _columns(data, ("batch", "heads", "seq_len", "head_dim", "causal", "time_s"))
    traces: list[dict[str, Any]] = []
    groups = sorted({(float(x), float(c)) for x, c in zip(d, causal, strict=True)})
    for i, (hd, c) in enumerate(groups):
        sel = (d == hd) & (causal == c)
        colour = palette_colour(i)
        label = f"head dim {hd:.0f}, {'causal' if c else 'no mask'}"
        flop = model.flop_multiplier * attention_flop(b[sel], h[sel], s[sel], s[sel], hd, causal=bool(c))
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"measured, {label}",
                "x": s[sel].tolist(),
                "y": (flop / t[sel] / 1e12).tolist(),
                "marker": {"color": colour, "size": 8},
            }
        )
        grid = np.geomspace(float(s[sel].min()), float(s[sel].max()), 60)
        b0, h0 = float(b[sel][0]), float(h[sel][0])
        heads_batch = b0 * h0 * float(s[sel][0])  # the benchmark keeps batch x seq_len fixed
        batch = heads_batch / h0 / grid
        curve_t = attention_prefill_time_s(model, batch, h0, grid, grid, hd, causal=bool(c))
        curve_flop = model.flop_multiplier * attention_flop(batch, h0, grid, grid, hd, causal=bool(c))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"model, {label}",
                "x": grid.tolist(),
                "y": (curve_flop / curve_t / 1e12).tolist(),
                "line": {"color": colour, "width": 2},
            }
        )
    what = "forward + backward" if model.flop_multiplier > 1.0 else "forward"
    return {
        "data": traces,
        "layout": _layout(_title(fit), "sequence length (tokens)", f"achieved TFLOP/s, {what}"),
    }


def _decode_figure(fit: KernelFit, model: AttentionKernelModel, data: dict[str, Any]) -> dict[str, Any]:
    b, hkv, s, d, tensors, t = _columns(data, ("batch", "kv_heads", "kv_len", "head_dim", "tensors_read", "time_s"))
    labels = [str(r[data["columns"].index("label")]) for r in data["rows"]]
    element_bytes = 1.0 if fit.dtype in ("fp8", "int8") else 2.0
    predicted = attention_decode_time_s(model, b, hkv, s, d, element_bytes, tensors_read=tensors)
    return {
        "data": [
            {"type": "bar", "name": "measured", "x": labels, "y": (t * 1e6).tolist(), "marker": {"color": MEASURED}},
            {"type": "bar", "name": "model", "x": labels, "y": (predicted * 1e6).tolist(), "marker": {"color": MODEL}},
        ],
        "layout": {
            **_layout(_title(fit), "kernel", "time (µs)", x_log=False),
            "barmode": "group",
        },
    }


def _title(fit: KernelFit) -> str:
    return (
        f"{fit.accelerator} {fit.dtype}, {fit.stack}, {fit.kernel_family.replace('_', ' ')}: "
        f"mean |error| {fit.mean_abs_pct_error:.1f}%, max {fit.max_abs_pct_error:.1f}%"
    )


def _chart(root: Path, fit: KernelFit) -> CalibrationChart:
    data = load_data(root, fit)
    model = fit.model
    if isinstance(model, GemmKernelModel):
        figure = _gemm_figure(fit, model, data)
    elif fit.kernel_family == "attention_decode":
        figure = _decode_figure(fit, model, data)
    else:
        figure = _prefill_figure(fit, model, data)
    return CalibrationChart(
        key=fit.id,
        accelerator=fit.accelerator,
        dtype=fit.dtype,
        stack=fit.stack,
        kernel_family=fit.kernel_family,
        title=_title(fit),
        source=fit.source,
        rows=len(data["rows"]),
        mean_abs_pct_error=fit.mean_abs_pct_error,
        max_abs_pct_error=fit.max_abs_pct_error,
        figure=figure,
    )


_LOCK = threading.Lock()
_CHARTS: dict[Path, list[CalibrationChart]] = {}


def calibration_charts(catalog: Catalog) -> list[CalibrationChart]:
    """One chart per kernel fit, ordered by accelerator, dtype, stack and family (computed once per root)."""
    root = Path(catalog.root)
    with _LOCK:
        if root not in _CHARTS:
            fits = load_fits(root)
            _CHARTS[root] = [_chart(root, fit) for fit in sorted(fits.values(), key=lambda f: f.id)]
        return list(_CHARTS[root])
