"""A standalone HTML report of one scenario: inputs, metrics with their math, tables, charts,
the published figures it can be compared with and the scenarios it links to.

The file opens offline: plotly.js and the charts are embedded. Every piece of user text is
HTML-escaped, and the JSON the script reads sits in a data block with '<', '>' and '&' escaped,
so a scenario name cannot close the block. The API serves it as an attachment (a download), never
rendered on the server's origin. Nothing in it loads or links anything: a linked scenario is shown
with the dashboard path that opens it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from dse.scenarios.base import EvaluationResult, PublishedComparison, ScenarioLink
from dse.scenarios.documents import kind_of, parse_document
from dse.services.assets import LOG_TICKS_JS, PLOTLY_JS

__all__ = ["render_report", "report_filename"]

REPORT_CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1d232b;max-width:1100px;margin:2rem auto;padding:0 1rem}
h1{font-size:1.4rem;margin-bottom:.2rem}
h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #d9dee4;padding-bottom:.2rem}
.muted{color:#66707c}table{border-collapse:collapse;width:100%;font-size:.86rem;margin:.4rem 0}
th,td{border-bottom:1px solid #d9dee4;padding:.28rem .45rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}code{white-space:pre-wrap;font-size:.82rem}
.figure{border:1px solid #d9dee4;border-radius:8px;margin:.8rem 0;min-height:360px}
.bad{color:#b3261e}.good{color:#1b7f3b}.warn{color:#9a5b00}
"""
#: Draws each figure, its log axes labelled as the dashboard labels them: the functions of logticks.js,
#: which the report embeds (_render_script). The bottom margin is result.js BASE_LAYOUT's: room for an x-axis
#: title's descenders. As the dashboard, it counts the drawings not yet finished on <html data-pending-draws>.
RENDER_SCRIPT = """
var figs=JSON.parse(document.getElementById('figure-data').textContent);
var pending=figs.length,root=document.documentElement;root.dataset.pendingDraws=String(pending);
function drawn(){pending-=1;root.dataset.pendingDraws=String(pending);}
figs.forEach(function(f,i){var fig=f.figure||{};var layout=Object.assign({title:{text:f.title},
margin:{t:50,l:60,r:20,b:60}},fig.layout||{});Object.keys(layout).forEach(function(k){
if(/^[xy]axis[0-9]*$/.test(k))layout[k]=Object.assign({automargin:true},layout[k]);});
['xaxis','yaxis'].forEach(function(k){layout[k]=Object.assign({automargin:true},layout[k]||{});});
Plotly.newPlot('figure-'+i,fig.data||[],presetLogTicks(fig.data||[],layout),{displaylogo:false,responsive:true})
.then(function(div){return fitLogTicks(div);}).then(drawn,drawn);});
"""


@cache
def _render_script() -> str:
    """The dashboard's log-tick module as a plain script (its exports dropped), then RENDER_SCRIPT, in one
    scope: one copy of the tick rules, so the report's axes read as the dashboard's."""
    ticks = re.sub(r"^export ", "", LOG_TICKS_JS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return f"(function(){{\n{ticks}\n{RENDER_SCRIPT}}})();"


@cache
def _plotly_source() -> str:
    return PLOTLY_JS.read_text(encoding="utf-8")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _e(value)
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e7:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _json_block(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [row for i, v in enumerate(value) for row in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, json.dumps(value) if isinstance(value, list) else value)]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_number(c)}</td>'
            if isinstance(c, int | float) and not isinstance(c, bool)
            else f"<td>{'yes' if c else 'no'}</td>"
            if isinstance(c, bool)
            else f"<td>{_e(c if c is not None else '')}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f}%"


def _verdict(comparison: PublishedComparison) -> str:
    if comparison.role == "context":
        return "context"
    if comparison.within_tolerance is None:
        return "—"
    return "within" if comparison.within_tolerance else "outside"


def _published_table(published: list[PublishedComparison]) -> str:
    """Published vs engine, typed: context rows (a published setting beside this scenario's input) say so."""
    return _table(
        ["quantity", "published", "engine", "unit", "relative error", "tolerance", "verdict", "source", "note"],
        [
            [
                c.quantity,
                c.published if c.published is not None else c.published_text,
                c.engine,
                c.unit,
                _percent(c.relative_error),
                c.tolerance_label or "—",
                _verdict(c),
                c.source,
                c.note,
            ]
            for c in published
        ],
    )


def dashboard_path(document: dict[str, Any]) -> str:
    """The dashboard page that opens `document`: its kind's page, the document encoded as the dashboard does."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    encoded = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
    return f"/k/{quote(str(document.get('kind', '')), safe='')}?doc={encoded}"


def _links_table(links: list[ScenarioLink]) -> str:
    """Linked scenarios: shown, not linked (the report loads and links nothing), with the path that opens each."""
    rows = "".join(
        f"<tr><td>{_e(link.label)}</td><td>{_e(link.document.get('kind', ''))}</td><td>{_e(link.note)}</td>"
        f"<td><code>{_e(dashboard_path(link.document))}</code></td></tr>"
        for link in links
    )
    return (
        "<table><thead><tr><th>scenario</th><th>kind</th><th>note</th><th>open in the dashboard at</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def report_filename(name: str) -> str:
    """The download's file name: the scenario's name reduced to safe characters."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "scenario"
    return f"{slug}-report.html"


def render_report(document: dict[str, Any], result: EvaluationResult, share_url: str | None = None) -> str:
    """The whole report as one HTML string."""
    kind = kind_of(parse_document(document))
    parts = [
        f"<h1>{_e(document['name'])}</h1>",
        f'<p class="muted">{_e(kind.title)} — engine {_e(result.engine_version)} — generated '
        f"{_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))}"
        + (f" — saved as {_e(share_url)}" if share_url else "")
        + "</p>",
        f'<p class="{"good" if result.feasible else "bad"}">'
        f"{'feasible' if result.feasible else 'does not fit or is invalid'}</p>",
        "".join(f"<p>{_e(n)}</p>" for n in result.notes),
        f"<p>{_e(result.ranking.note)}</p>" if result.ranking is not None else "",
        "<h2>Inputs</h2>",
        _table(
            ["input", "value"],
            [
                [path, "auto (from the preset)" if value is None else value]
                for path, value in _flatten(document["inputs"])
            ],
        ),
        "<h2>Metrics and their math</h2>",
        _table(
            ["metric", "value", "unit", "likely measured (P10–P90)", "formula", "terms"],
            [
                [
                    m.label,
                    m.value if m.value_type != "boolean" or m.value is None else bool(m.value),
                    m.unit,
                    "" if m.band is None else f"{_number(m.band.p10)} – {_number(m.band.p90)} ({m.band.group})",
                    m.formula,
                    ", ".join(f"{k} = {_number(v) if not isinstance(v, str) else v}" for k, v in m.terms.items()),
                ]
                for m in result.metrics
            ],
        ),
        "<h2>Charts</h2>",
        "".join(f'<div class="figure" id="figure-{i}"></div>' for i in range(len(result.charts))),
    ]
    for table in result.tables:
        parts.append(f"<h2>{_e(table.title)}</h2>")
        parts.append(_table([f"{c.label} [{c.unit}]" if c.unit else c.label for c in table.columns], table.rows))
    if result.published:
        parts.append("<h2>Published figures</h2>")
        parts.append(_published_table(result.published))
    if result.links:
        parts.append("<h2>Scenarios to open</h2>")
        parts.append(_links_table(result.links))
    parts.append("<h2>Scenario document</h2>")
    parts.append(f"<pre><code>{_e(json.dumps(document, indent=1))}</code></pre>")
    figures = [f.model_dump(mode="json") for f in result.charts]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(document['name'])} — report</title><style>{REPORT_CSS}</style></head><body>"
        + "".join(parts)
        + f'<script type="application/json" id="figure-data">{_json_block(figures)}</script>'
        + f"<script>{_plotly_source()}</script><script>{_render_script()}</script></body></html>"
    )
