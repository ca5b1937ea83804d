"""Figures written as the dicts plotly would give, without building plotly objects.

Plotly's figure objects validate every property (~10 ms a chart, more than a closed-form kind's whole
answer); a chart that is in every quick answer is written as plain data and layout instead, with the
default template a figure carries, and a test per chart holds it equal to plotly's own figure
(`go.Figure(figure).to_plotly_json() == figure`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import plotly.io as pio


@cache
def default_template() -> dict[str, Any]:
    """Plotly's default template as a figure carries it (what `go.Figure().to_plotly_json()` holds), built once."""
    template: dict[str, Any] = pio.templates[pio.templates.default].to_plotly_json()
    return template


def plain_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """{data, layout} with the default template first in the layout, as plotly orders it."""
    return {"data": data, "layout": {"template": default_template(), **layout}}


def dashed_line_at(y: float, text: str) -> dict[str, Any]:
    """The shapes and annotations of plotly's `add_hline(y, line_dash="dash", annotation_text=text)`."""
    return {  # keys in plotly's order
        "shapes": [
            {
                "line": {"dash": "dash"},
                "type": "line",
                "x0": 0,
                "x1": 1,
                "xref": "x domain",
                "y0": y,
                "y1": y,
                "yref": "y",
            }
        ],
        "annotations": [
            {
                "showarrow": False,
                "text": text,
                "x": 1,
                "xanchor": "right",
                "xref": "x domain",
                "y": y,
                "yanchor": "bottom",
                "yref": "y",
            }
        ],
    }
