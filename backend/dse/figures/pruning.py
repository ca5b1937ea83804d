"""Plotly figure dicts for the pruning kind: MACs per block and per code, routing heatmap, throughput."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Display order and labels of the MAC categories.
MAC_CATEGORY_LABELS: dict[str, str] = {
    "conv": "convolution",
    "linear": "linear",
    "self_attention": "self-attention matmuls",
    "cross_attention": "cross-attention matmuls",
}


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h"},
    }
    layout.update(extra)
    return layout


def stacked_macs_figure(
    *, title: str, x_labels: Sequence[str], x_title: str, gmacs_by_category: dict[str, Sequence[float]]
) -> dict[str, Any]:
    """Stacked bars of GMACs per x (a block or a code), one trace per MAC category."""
    data = [
        {"type": "bar", "name": MAC_CATEGORY_LABELS.get(key, key), "x": list(x_labels), "y": [float(v) for v in values]}
        for key, values in gmacs_by_category.items()
    ]
    return {"data": data, "layout": _layout(title, x_title, "GMACs per denoising step (batch 1)", barmode="stack")}


def routing_heatmap(
    *, category_names: Sequence[str], code_labels: Sequence[str], share_of_category: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """Heatmap: row i, column k = share of category i's prompts routed to code k."""
    data = [
        {
            "type": "heatmap",
            "x": list(code_labels),
            "y": list(category_names),
            "z": [[float(v) for v in row] for row in share_of_category],
            "zmin": 0.0,
            "zmax": 1.0,
            "colorscale": "Blues",
            "colorbar": {"title": {"text": "share of category"}},
        }
    ]
    return {
        "data": data,
        "layout": _layout("Prompt-to-code assignment (Sinkhorn plan)", "code (R_k)", "prompt category"),
    }


def throughput_figure(*, batch_sizes: Sequence[float], images_per_s: dict[str, Sequence[float]]) -> dict[str, Any]:
    """Images/s vs batch size, one line per serving strategy."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": [float(b) for b in batch_sizes],
            "y": [float(v) for v in values],
        }
        for name, values in images_per_s.items()
    ]
    layout = _layout("Throughput vs batch size", "prompts per batch", "images / s")
    layout["xaxis"]["type"] = "log"
    return {"data": data, "layout": layout}
