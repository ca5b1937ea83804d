"""One look for every chart: the qualitative palette, line dashes and marker symbols, and the helpers that
give each series of a chart its own colour and a chart the height its content needs.

The palette is defined here only; the dashboard's own charts (compare, sweep) use the same list
(frontend/static/js/result.js `PALETTE` and `BAND_FILL`, kept equal to these by
tests/scenarios/test_sweep_feasible.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: 14 distinct qualitative colours (Tableau 10 followed by four darker, distinct tones), in the order series get them.
PALETTE: tuple[str, ...] = (
    "#4E79A7",  # blue
    "#F28E2B",  # orange
    "#59A14F",  # green
    "#E15759",  # red
    "#B07AA1",  # purple
    "#76B7B2",  # teal
    "#EDC948",  # yellow
    "#FF9DA7",  # pink
    "#9C755F",  # brown
    "#BAB0AC",  # grey
    "#1F3A93",  # navy
    "#8CD17D",  # light green
    "#B6992D",  # olive
    "#D37295",  # rose
)
#: Background context (e.g. a sample of every plan behind a front): light grey, drawn first.
CONTEXT = "#C5CAD0"
#: Points that do not fit (infeasible): drawn grey and hollow, never in a series' colour.
INFEASIBLE = "#9AA0A6"
#: The P10-P90 validation band of a series: translucent neutral grey, never a series' colour.
BAND_FILL = "rgba(120,120,120,0.18)"
#: Line dashes and marker symbols, so lines that lie on each other stay distinguishable.
DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")

#: The smallest text a chart writes (a reference line's label), in px: 10 px read as a smudge.
LABEL_FONT_PX = 11
#: Pixels per legend entry (vertical legend), per horizontal bar, and the room title + axes take.
LEGEND_ROW_PX = 21
BAR_ROW_PX = 24
FRAME_PX = 150


def colour(index: int) -> str:
    """The palette's colour number `index` (wrapping after the last)."""
    return PALETTE[index % len(PALETTE)]


def paint(traces: Iterable[dict[str, Any]], *, lines: bool = False) -> list[dict[str, Any]]:
    """Gives every series (a legend group, else a trace) its own palette colour where the trace has none;
    with `lines`, scatter series also get their own dash and marker symbol. Returns the traces."""
    out = list(traces)
    series: dict[str, int] = {}
    for trace in out:
        name = str(trace.get("legendgroup") or trace.get("name") or len(series))
        n = series.setdefault(name, len(series))
        marker = dict(trace.get("marker") or {})
        if trace.get("type", "scatter") == "bar":
            marker.setdefault("color", colour(n))
        elif trace.get("type", "scatter") == "scatter":
            line = dict(trace.get("line") or {})
            line.setdefault("color", colour(n))
            marker.setdefault("color", line["color"])
            if lines:
                line.setdefault("dash", DASHES[n % len(DASHES)])
                marker.setdefault("symbol", SYMBOLS[n % len(SYMBOLS)])
            trace["line"] = line
        trace["marker"] = marker
    return out


def legend_entries(traces: Iterable[dict[str, Any]]) -> int:
    """How many entries the legend of these traces shows (one per legend group)."""
    groups: set[str] = set()
    count = 0
    for trace in traces:
        if trace.get("showlegend") is False or not trace.get("name"):
            continue
        group = trace.get("legendgroup")
        if group:
            if group in groups:
                continue
            groups.add(group)
        count += 1
    return count


def height_for(*, rows: int = 0, legend: int = 0, base: int = 360) -> int:
    """A chart's height (px): at least `base`, enough for `rows` horizontal bars (or category rows) and
    for a vertical legend of `legend` entries."""
    return int(max(base, FRAME_PX + BAR_ROW_PX * rows, 110 + LEGEND_ROW_PX * legend))
