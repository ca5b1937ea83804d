"""Plotly charts of the `pruning` kind: MACs per block and per code, the routing heatmap, throughput."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dse.engines import pruning as eng
from dse.scenarios.base import Chart
from dse.scenarios.kinds.pruning.studies import CATEGORY_INDEX, MAC_CATEGORY_LABELS, SHOWN_CATEGORIES
from dse.scenarios.shared.palette import height_for, legend_entries, paint


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
    }
    layout.update(extra)
    return layout


def stacked_macs_figure(
    *, title: str, x_labels: Sequence[str], x_title: str, gmacs_by_category: dict[str, Sequence[float]]
) -> dict[str, Any]:
    """Stacked horizontal bars of GMACs per block or code (one row each, every label shown), one trace
    per MAC category."""
    data = paint(
        {
            "type": "bar",
            "orientation": "h",
            "name": MAC_CATEGORY_LABELS.get(key, key),
            "y": list(x_labels),
            "x": [float(v) for v in values],
        }
        for key, values in gmacs_by_category.items()
    )
    layout = _layout(
        title,
        "GMACs per denoising step (batch 1)",
        x_title,
        barmode="stack",
        height=height_for(rows=len(x_labels), legend=legend_entries(data)),
    )
    layout["yaxis"].update({"type": "category", "autorange": "reversed", "dtick": 1})
    return {"data": data, "layout": layout}


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
            # Plotly's "Blues" runs dark to light, so an empty cell looked like the strongest; Viridis (as
            # the sweep heatmaps) runs dark for 0 to bright for 1.
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "share of category", "side": "right"}},
        }
    ]
    # Code labels are long ("thin high-res (R=0.77)"): written upright, every one, with the room they need.
    longest = max((len(c) for c in code_labels), default=0)
    upright = len(code_labels) > 4 or longest > 12
    layout = _layout(
        "Prompt-to-code assignment (Sinkhorn plan)",
        "code (R: MACs / the full UNet's)",
        "prompt category",
        height=height_for(rows=len(category_names)) + (7 * longest if upright else 0),
    )
    layout["xaxis"].update({"type": "category", "tickangle": -90 if upright else 0, "dtick": 1})
    layout["yaxis"]["type"] = "category"
    return {"data": data, "layout": layout}


def throughput_figure(
    *, batch_sizes: Sequence[float], images_per_s: dict[str, Sequence[float]], banded: str | None = None
) -> dict[str, Any]:
    """Images/s vs batch size, one line per serving strategy; the `banded` one (the scenario's answer)
    carries `meta.band`, so the service draws the validation error band around it."""
    data = paint(
        (
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [float(b) for b in batch_sizes],
                "y": [float(v) for v in values],
                **({"meta": {"band": "rate"}} if name == banded else {}),
            }
            for name, values in images_per_s.items()
        ),
        lines=True,
    )
    layout = _layout("Throughput vs batch size", "prompts per batch", "images/s")
    layout["xaxis"]["type"] = "log"
    return {"data": data, "layout": layout}


def macs_per_block_chart(table: eng.LayerTable, full: eng.BlockCounts) -> Chart:
    return Chart(
        key="macs_per_block",
        title="Full UNet MACs per block",
        figure=stacked_macs_figure(
            title="Full UNet MACs per block",
            x_labels=table.block_names,
            x_title="block",
            gmacs_by_category={
                c: list(full.macs[:, i] / 1e9) for c, i in zip(SHOWN_CATEGORIES, CATEGORY_INDEX, strict=True)
            },
        ),
    )


def macs_per_code_chart(code_labels: Sequence[str], per_code: eng.BlockCounts) -> Chart:
    return Chart(
        key="macs_per_code",
        title="UNet MACs per code",
        figure=stacked_macs_figure(
            title="UNet MACs per code",
            x_labels=code_labels,
            x_title="code",
            gmacs_by_category={
                c: list(per_code.macs[:, :, i].sum(axis=-1) / 1e9)
                for c, i in zip(SHOWN_CATEGORIES, CATEGORY_INDEX, strict=True)
            },
        ),
    )


def routing_chart(category_names: Sequence[str], code_labels: Sequence[str], shares: list[list[float]]) -> Chart:
    return Chart(
        key="routing_heatmap",
        title="Prompt-to-code assignment",
        figure=routing_heatmap(category_names=category_names, code_labels=code_labels, share_of_category=shares),
    )


def throughput_chart(batch_sizes: Sequence[int], tput: dict[str, list[float]]) -> Chart:
    return Chart(
        key="throughput_vs_batch",
        title="Throughput vs batch size",
        figure=throughput_figure(
            batch_sizes=batch_sizes,
            images_per_s={
                "static (one pruned model)": tput["static"],
                "dynamic (per-prompt, batch 1)": tput["dynamic"],
                "APTP (batched per code)": tput["aptp"],
                "unpruned": tput["full"],
            },
            banded="APTP (batched per code)",
        ),
    )
