"""The standalone report, the validation endpoints and the sweep-axes helper over HTTP."""

from __future__ import annotations

import copy
import math
import re

from dse.scenarios.registry import KINDS
from dse.services.assets import LOG_TICKS_JS

HOSTILE = "<script>alert(1)</script></script><img src=x onerror=alert(2)>"


def _doc(name: str = "report test") -> dict:
    return {**KINDS["rl_scaling"].examples()[0], "name": name}


def test_report_is_a_self_contained_download_with_user_text_escaped(client):
    response = client.post("/api/v1/report", json=_doc(HOSTILE))
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    html = response.text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Offline: no element loads anything (the browser test checks no request leaves the page);
    # plotly.js is inline; the figure data sits in a JSON block.
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"""<[^>]+\b(src|href)\s*=""", markup)
    assert "Plotly.newPlot" in html and 'id="figure-data"' in html
    data_block = html.split('id="figure-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_block  # a name cannot close the block


def test_the_report_labels_log_axes_with_the_dashboards_own_tick_script(client):
    """One copy of the tick rules: the report embeds frontend/static/js/logticks.js (its exports dropped)."""
    html = client.post("/api/v1/report", json=_doc()).text
    script = re.sub(r"^export ", "", LOG_TICKS_JS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert "function fitLogTicks(" in script and script in html
    assert "presetLogTicks(" in html.split(script, 1)[1]


def test_saved_scenario_report(client):
    saved = client.post("/api/v1/scenarios", json=_doc()).json()
    response = client.get(f"/api/v1/scenarios/{saved['id']}/report.html")
    assert response.status_code == 200 and f"/s/{saved['id']}" in response.text
    assert client.get("/api/v1/scenarios/nope/report.html").status_code == 404


def test_validation_endpoints(client):
    everything = client.get("/api/v1/validation").json()
    assert set(KINDS) <= set(everything)
    rows = client.get("/api/v1/validation/rl_scaling").json()
    assert {
        "kind",
        "quantity",
        "published",
        "published_text",
        "engine",
        "unit",
        "relative_error",
        "tolerance",
        "tolerance_label",
        "within_tolerance",
        "source",
        "note",
        "role",
        "known_miss",
        "error",
    } <= set(rows[0])
    assert rows == everything["rl_scaling"]
    assert client.get("/api/v1/validation/nope").status_code == 404


def test_sweep_axes_lists_numeric_inputs_with_their_values(client):
    axes = client.post("/api/v1/sweep/axes", json=KINDS["inference"].examples()[0]).json()
    assert axes["batch_size"] == KINDS["inference"].examples()[0]["inputs"]["batch_size"]


def test_calibration_charts_endpoint(client):
    charts = client.get("/api/v1/calibration").json()
    keys = {c["key"] for c in charts}
    assert {"a100-80gb.fp16.vidur-pytorch.gemm", "h100-sxm.fp16.flash-attention-3.attention_fwd"} <= keys
    for chart in charts:
        figure = chart["figure"]
        assert (
            figure["data"] and figure["layout"]["xaxis"]["title"]["text"] and figure["layout"]["yaxis"]["title"]["text"]
        )
        names = [t["name"] for t in figure["data"]]
        assert any(n.startswith("measured") for n in names) and any(n.startswith("model") for n in names)
        assert chart["source"] and chart["rows"] > 0 and chart["max_abs_pct_error"] >= chart["mean_abs_pct_error"]


def _lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* of an sRGB "#rrggbb" (D65)."""
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
    xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b)
    xyz += ((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,)
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_calibration_charts_give_each_series_a_distinct_colour(client):
    """The attention charts drew "head dim 128, causal" in #c0392b and "head dim 256, causal" in #d35400, a
    red and an orange one cannot tell apart (CIE76 difference 25; the palette's closest pair is 34 apart).
    A series' measured points and its model curve share its colour, so the measured traces are compared."""
    for chart in client.get("/api/v1/calibration").json():
        measured = {
            t["name"]: t["marker"]["color"] for t in chart["figure"]["data"] if t["name"].startswith("measured")
        }
        names = sorted(measured)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                difference = math.dist(_lab(measured[a]), _lab(measured[b]))
                assert difference >= 30, (chart["key"], a, measured[a], b, measured[b], round(difference))


def test_validation_summary_endpoint(client):
    rows = client.get("/api/v1/validation-summary").json()
    every = {(row["kind"], row["group"]) for row in rows}
    assert ("training", "all") in every and ("training", "training/A100/bf16") in every
    everything = client.get("/api/v1/validation").json()
    training = next(row for row in rows if row["kind"] == "training" and row["group"] == "all")
    errors = [abs(r["relative_error"]) for r in everything["training"] if r["relative_error"] is not None]
    assert training["figures"] == len(errors)
    assert abs(training["mean_abs_error"] - sum(errors) / len(errors)) < 1e-12


def test_an_evaluation_carries_bands_and_says_when_it_is_outside_what_was_validated(client):
    inside, outside = KINDS["training"].examples()[:2]  # A100 bf16 (validated); MI300X below (never validated)
    outside = copy.deepcopy(outside)
    outside["inputs"]["cluster"].update(accelerator="mi300x", intra_node_link="infinity-fabric-mi300x")
    result = client.post("/api/v1/evaluate", json=inside).json()
    band = next(m for m in result["metrics"] if m["key"] == "iteration_time_s")["band"]
    assert band["group"] == "training/A100/bf16" and band["p10"] <= band["p50"] <= band["p90"]
    assert band["residuals"] >= 5 and band["method"] == "quantiles"
    assert result["validation_scope"]["validated"] is True
    assert next(m for m in result["metrics"] if m["key"] == "memory_total_bytes")["band"] is None
    result = client.post("/api/v1/evaluate", json=outside).json()
    assert result["validation_scope"]["validated"] is False
    assert any(note.startswith("Outside what was validated") for note in result["notes"])
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schemas["Metric"]["properties"]["band"]["anyOf"][0]["$ref"].endswith("/MetricBand")
    assert {"p10", "p50", "p90", "group", "residuals", "known_misses"} <= set(schemas["MetricBand"]["properties"])


def test_the_report_shows_each_metrics_band(client):
    html = client.post("/api/v1/report", json=KINDS["training"].examples()[0]).text
    assert "likely measured (P10–P90)" in html and "(training/A100/bf16)" in html


def test_a_sweep_carries_each_metrics_relative_band(client):
    doc = KINDS["training"].examples()[0]
    body = {"document": doc, "axes": [{"path": "global_batch_size", "values": [1536, 2304]}]}
    result = client.post("/api/v1/sweep", json=body).json()
    band = result["bands"]["iteration_time_s"]
    assert band["group"] == "training/A100/bf16"
    assert band["relative_p10"] <= band["relative_p50"] <= band["relative_p90"]
    assert "memory_total_bytes" not in result["bands"] and result["validation_scope"]["validated"] is True
    evaluated = client.post("/api/v1/evaluate", json=doc).json()
    metric = next(m for m in evaluated["metrics"] if m["key"] == "iteration_time_s")
    assert metric["band"]["relative_p90"] == band["relative_p90"]  # the same factors as the evaluation's
